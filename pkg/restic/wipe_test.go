package restic

import (
	"strings"
	"testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func s3(endpoint, bucket, prefix string) v1beta1.Backend {
	return v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: endpoint, Bucket: bucket, Prefix: prefix}}
}

func TestWipeRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    v1beta1.Backend
		want string
	}{
		{"s3 with prefix", s3("minio:9000", "b", "team/a"), ""},
		{"s3 no prefix", s3("minio:9000", "b", ""), "whole bucket"},
		{"s3 prefix of slashes", s3("minio:9000", "b", "//"), "whole bucket"},
		{"gcs no prefix", v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b"}}, "whole bucket"},
		{"azure with prefix", v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c", Prefix: "p"}}, ""},
		{"rest without a path", v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://rest:8000/"}}, "whole bucket"},
		{"rest with a path", v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://rest:8000/repo"}}, ""},
		{"local", v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/repo"}}, "not supported for the local backend"},
		{"b2", v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b", Prefix: "p"}}, "not supported for the b2 backend"},
		{"none", v1beta1.Backend{}, "no backend"},
	} {
		got := WipeRefusal(tc.b)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: WipeRefusal = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b v1beta1.Backend
		want bool
	}{
		{"same", s3("minio:9000", "b", "a"), s3("http://MINIO:9000/", "b", "/a/"), true},
		{"sibling ab", s3("minio:9000", "b", "a"), s3("minio:9000", "b", "ab"), false},
		{"sibling a2", s3("minio:9000", "b", "a"), s3("minio:9000", "b", "a2"), false},
		{"inside", s3("minio:9000", "b", "a"), s3("minio:9000", "b", "a/b"), true},
		{"outside", s3("minio:9000", "b", "a/b"), s3("minio:9000", "b", "a"), true},
		{"whole bucket", s3("minio:9000", "b", "a"), s3("minio:9000", "b", ""), true},
		{"other bucket", s3("minio:9000", "b", "a"), s3("minio:9000", "c", "a"), false},
		{"other server", s3("minio:9000", "b", "a"), s3("s3.amazonaws.com", "b", "a"), false},
		{"other provider", s3("minio:9000", "b", "a"), v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", Prefix: "a"}}, false},
		{"gcs same", v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", Prefix: "a"}}, v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", Prefix: "a/x"}}, true},
		{"rest", v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://rest:8000/a"}}, v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://REST:8000/a/b"}}, true},
	} {
		if got := Overlap(tc.a, "ns", tc.b, "ns"); got != tc.want {
			t.Errorf("%s: Overlap = %v, want %v", tc.name, got, tc.want)
		}
		if got := Overlap(tc.b, "ns", tc.a, "ns"); got != tc.want {
			t.Errorf("%s (swapped): Overlap = %v, want %v", tc.name, got, tc.want)
		}
	}
}
