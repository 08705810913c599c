package restic

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestLocationKey(t *testing.T) {
	s3 := func(endpoint, bucket, prefix string) v1beta1.Backend {
		return v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: endpoint, Bucket: bucket, Prefix: prefix}}
	}
	pvc := func(claim, sub string) v1beta1.Backend {
		return v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/repo", SubPath: sub,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	}
	same := [][2]string{
		{LocationKey(s3("http://minio:9000", "b", "team/a"), "ns1", "r1"), LocationKey(s3("HTTP://Minio:9000/", "b", "/team/a/"), "ns2", "r2")},
		{LocationKey(s3("s3.amazonaws.com", "b", ""), "x", "a"), LocationKey(s3("https://s3.amazonaws.com", "b", "/"), "y", "b")},
		{LocationKey(pvc("repo", "x"), "ns", "a"), LocationKey(pvc("repo", "/x/"), "ns", "b")},
		{LocationKey(v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "https://user:pw@Rest.example/repo/"}}, "a", "a"),
			LocationKey(v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "https://rest.example/repo"}}, "b", "b")},
	}
	for _, p := range same {
		if p[0] != p[1] {
			t.Errorf("%q != %q: one location, two keys", p[0], p[1])
		}
	}
	different := [][2]string{
		{LocationKey(s3("minio:9000", "b", "team/a"), "ns", "r"), LocationKey(s3("minio:9000", "b", "team/b"), "ns", "r")},
		{LocationKey(s3("minio:9000", "b", "a"), "ns", "r"), LocationKey(s3("minio:9000", "c", "a"), "ns", "r")},
		{LocationKey(pvc("repo", ""), "ns1", "r"), LocationKey(pvc("repo", ""), "ns2", "r")},
		{LocationKey(v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b"}}, "n", "r"), LocationKey(v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b"}}, "n", "r")},
		{LocationKey(v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/r", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, "n", "a"),
			LocationKey(v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/r", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, "n", "b")},
	}
	for _, p := range different {
		if p[0] == p[1] {
			t.Errorf("two locations share the key %q", p[0])
		}
	}
	if k := LocationKey(v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "https://user:secret@rest.example/r"}}, "a", "a"); k != "rest:rest.example/r" {
		t.Errorf("rest key %q (must not carry credentials)", k)
	}
}
