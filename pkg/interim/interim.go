// Package interim is the interim volume of a session (Stash's
// interimVolumeTemplate): a PVC made from the template for one
// BackupSession or RestoreSession, mounted into its Job at MountPath, where
// a Function keeps data between its steps (INTERIM_DATA_DIR, DataDir). The
// session's controller creates it before the Job and deletes it when the
// session ends; its owner reference to the session lets Kubernetes remove a
// forgotten one with the session.
package interim

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

const (
	// VolumeName is the interim volume's name in the Job's pod.
	VolumeName = "stow-interim-volume"
	// MountPath is where every container of the Job mounts it.
	MountPath = v1beta1.InterimMountPath
	// DataDir is INTERIM_DATA_DIR when a session has an interim volume.
	DataDir = MountPath + "/data"
)

// ClaimName is the name of the interim PVC of session sessionName made
// from tpl (the template's metadata.name, or "stow-interim", then the
// session's name).
func ClaimName(tpl *corev1.PersistentVolumeClaim, sessionName string) string {
	return names.InterimClaim(tpl.Name, sessionName)
}

// Claim builds the interim PVC of one session from its template: the
// template's spec, labels and annotations, the name ClaimName, in
// namespace, controlled by owner (the session) and labelled as Stow's,
// with labels saying which invoker it serves. A template without a storage
// request is refused (no size, no volume); no access mode means
// ReadWriteOnce (one Job pod uses it). The rest is Kubernetes' to judge:
// an unknown StorageClass leaves the PVC, and the Job's pod, Pending.
func Claim(tpl *corev1.PersistentVolumeClaim, namespace, sessionName string, owner metav1.OwnerReference, invokerKind, invokerName string) (*corev1.PersistentVolumeClaim, error) {
	if tpl == nil {
		return nil, fmt.Errorf("no interimVolumeTemplate")
	}
	size, ok := tpl.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.Sign() <= 0 {
		return nil, fmt.Errorf("interimVolumeTemplate has no spec.resources.requests.storage: the interim volume needs a size")
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ClaimName(tpl, sessionName),
			Namespace:       namespace,
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: *tpl.Spec.DeepCopy(),
	}
	for k, v := range tpl.Labels {
		pvc.Labels[k] = v
	}
	for k, v := range tpl.Annotations {
		pvc.Annotations[k] = v
	}
	// Stow's labels win over the template's: they mark the PVC as Stow's.
	pvc.Labels[v1beta1.LabelManagedBy] = v1beta1.ManagedByStow
	pvc.Labels[v1beta1.LabelComponent] = v1beta1.ComponentInterim
	pvc.Labels[v1beta1.LabelInvokerType] = invokerKind
	pvc.Labels[v1beta1.LabelInvokerName] = names.LabelValue(invokerName)
	if len(pvc.Annotations) == 0 {
		pvc.Annotations = nil
	}
	if len(pvc.Spec.AccessModes) == 0 {
		pvc.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return pvc, nil
}

// Mount adds the interim PVC claimName to pod and mounts it at MountPath in
// every container. A container that mounts another volume at MountPath is
// an error, not replaced: that mount may be the target's, and a backup of
// the empty interim volume in its place would succeed, its retention then
// forgetting the real snapshots.
func Mount(pod *corev1.PodSpec, claimName string) error {
	m := corev1.VolumeMount{Name: VolumeName, MountPath: MountPath}
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range cs {
			for _, o := range cs[i].VolumeMounts {
				if o.MountPath == MountPath && o.Name != VolumeName {
					return fmt.Errorf("container %s mounts volume %q at %s, where Stow mounts the interim volume: mount it elsewhere", cs[i].Name, o.Name, MountPath)
				}
			}
		}
	}
	vol := corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName}}}
	replaced := false
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == VolumeName {
			pod.Volumes[i], replaced = vol, true
		}
	}
	if !replaced {
		pod.Volumes = append(pod.Volumes, vol)
	}
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range cs {
			mount(&cs[i], m)
		}
	}
	return nil
}

// mount puts m into c, in place of a mount of its volume (Mount has made
// sure that no other volume is mounted at its path).
func mount(c *corev1.Container, m corev1.VolumeMount) {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == m.Name || c.VolumeMounts[i].MountPath == m.MountPath {
			c.VolumeMounts[i] = m
			return
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, m)
}
