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

// TestLocationKeyIsStable pins the keys: Jobs carry them in an annotation,
// so an operator upgrade that changed one would let two Jobs of one location
// run at once.
func TestLocationKeyIsStable(t *testing.T) {
	for _, c := range []struct {
		b    v1beta1.Backend
		want string
	}{
		{v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "https://S3.example/", Bucket: "b", Prefix: "/p/q/"}}, "s3:s3.example/b/p/q"},
		{v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", Prefix: "p"}}, "gs:b/p"},
		{v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c", Prefix: "p"}}, "azure:c/p"},
		{v1beta1.Backend{Swift: &v1beta1.SwiftSpec{Container: "c"}}, "swift:c/"},
		{v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b", Prefix: "p"}}, "b2:b/p"},
		{v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://Rest.example:8000/r/"}}, "rest:rest.example:8000/r"},
		{v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "::bad"}}, "rest:::bad"},
		{v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/r", SubPath: "s",
			VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "NFS.example", Path: "/e/"}}}}, "local:nfs:nfs.example:e/s"},
		{v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/r",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/repo"}}}}, "local:hostpath:srv/repo/"},
		{v1beta1.Backend{}, "repository:ns/name"},
	} {
		if got := LocationKey(c.b, "ns", "name"); got != c.want {
			t.Errorf("LocationKey(%s) = %q, want %q", c.b.Provider(), got, c.want)
		}
	}
}
