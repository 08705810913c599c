package interim

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func template(name string, storage string) *corev1.PersistentVolumeClaim {
	t := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{"team": "db", v1beta1.LabelManagedBy: "someone"},
		Annotations: map[string]string{"note": "scratch"}},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr("fast")}}
	if storage != "" {
		t.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(storage)}
	}
	return t
}

func ptr[T any](v T) *T { return &v }

func TestClaim(t *testing.T) {
	owner := v1beta1.OwnerRef(v1beta1.KindBackupSession, "nightly-1700000000", "s-uid")
	pvc, err := Claim(template("stash-tmp-volume", "1Gi"), "apps", "nightly-1700000000", owner, v1beta1.KindBackupConfiguration, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Name != "stash-tmp-volume-nightly-1700000000" || pvc.Namespace != "apps" {
		t.Errorf("name %s/%s", pvc.Namespace, pvc.Name)
	}
	if c := metav1.GetControllerOf(pvc); c == nil || c.UID != "s-uid" || c.Kind != v1beta1.KindBackupSession {
		t.Errorf("controller = %+v", c)
	}
	want := map[string]string{"team": "db", v1beta1.LabelManagedBy: v1beta1.ManagedByStow, v1beta1.LabelComponent: v1beta1.ComponentInterim,
		v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration, v1beta1.LabelInvokerName: "nightly"}
	for k, v := range want {
		if pvc.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, pvc.Labels[k], v)
		}
	}
	if pvc.Annotations["note"] != "scratch" || *pvc.Spec.StorageClassName != "fast" ||
		len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("annotations %v, class %v, access modes %v", pvc.Annotations, pvc.Spec.StorageClassName, pvc.Spec.AccessModes)
	}
	// No template name: Stow's; a long session name still gives a valid name.
	long := strings.Repeat("x", 80)
	pvc, err = Claim(template("", "1Gi"), "apps", long, owner, v1beta1.KindRestoreSession, long)
	if err != nil || !strings.HasPrefix(pvc.Name, "stow-interim-x") || len(pvc.Name) > 63 {
		t.Errorf("unnamed template: %v, %q", err, pvc.Name)
	}
	if ClaimName(template("", "1Gi"), long) != pvc.Name {
		t.Error("ClaimName and Claim disagree")
	}
	for _, bad := range []*corev1.PersistentVolumeClaim{template("t", ""), template("t", "0")} {
		if _, err := Claim(bad, "apps", "s", owner, v1beta1.KindBackupConfiguration, "b"); err == nil || !strings.Contains(err.Error(), "spec.resources.requests.storage") {
			t.Errorf("template without a size: %v", err)
		}
	}
	if _, err := Claim(nil, "apps", "s", owner, v1beta1.KindBackupConfiguration, "b"); err == nil {
		t.Error("nil template accepted")
	}
}

func TestMount(t *testing.T) {
	pod := corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "backup-0"}},
		Containers:     []corev1.Container{{Name: "update-status-1", VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}}},
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := Mount(&pod, "stow-interim-s"); err != nil {
			t.Fatal(err)
		}
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != "stow-interim-s" {
		t.Fatalf("volumes = %+v", pod.Volumes)
	}
	for _, c := range append(pod.InitContainers, pod.Containers...) {
		if n := len(c.VolumeMounts); c.VolumeMounts[n-1].Name != VolumeName || c.VolumeMounts[n-1].MountPath != MountPath {
			t.Errorf("container %s mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	if m := pod.Containers[0].VolumeMounts; len(m) != 2 || m[0].Name != "x" {
		t.Errorf("the container's own mount is gone: %+v", m)
	}
}

// Another volume mounted at the interim volume's path (the target, say) is
// an error: replacing it would back up, or restore into, the interim volume
// instead, and the session would succeed.
func TestMountRefusesAnotherVolumeAtItsPath(t *testing.T) {
	pod := corev1.PodSpec{
		Volumes:    []corev1.Volume{{Name: "stow-volume"}},
		Containers: []corev1.Container{{Name: "pvc-backup-0", VolumeMounts: []corev1.VolumeMount{{Name: "stow-volume", MountPath: MountPath}}}},
	}
	err := Mount(&pod, "stow-interim-s")
	if err == nil || !strings.Contains(err.Error(), `container pvc-backup-0 mounts volume "stow-volume" at /stow-interim-volume`) {
		t.Fatalf("Mount: %v", err)
	}
	if m := pod.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "stow-volume" || len(pod.Volumes) != 1 {
		t.Errorf("pod changed: mounts %+v, volumes %+v", m, pod.Volumes)
	}
}
