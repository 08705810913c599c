package resolve

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// defaultPodSecurity is the pod securityContext Stow uses when
// runtimeSettings.pod.securityContext is not given: nobody (65534), non-root,
// for backups and restores alike, so that every Job pod passes PodSecurity
// "restricted" and a compromised or buggy runner cannot write what it backs
// up. A non-root restore cannot give files their owners back: restored files
// belong to 65534 (modes and contents are kept). Owners are restored by a
// restore that runs as root, which the user asks for with runAsUser: 0 and
// admission allows only to who may run such a pod (docs/security.md).
func defaultPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(nobody), RunAsGroup: ptr.To(nobody)}
}

// RestoresOwners tells whether every container of a restore pod runs as
// root, so that restored files get their owners back.
func RestoresOwners(pod *corev1.PodSpec) bool {
	root := func(c *corev1.Container) bool {
		uid := runAsUser(pod.SecurityContext, c.SecurityContext)
		return uid != nil && *uid == 0
	}
	for i := range pod.InitContainers {
		if !root(&pod.InitContainers[i]) {
			return false
		}
	}
	for i := range pod.Containers {
		if !root(&pod.Containers[i]) {
			return false
		}
	}
	return true
}

// runAsUser is the uid a container runs as: its own runAsUser, else the
// pod's; nil when neither sets one (the image's user).
func runAsUser(psc *corev1.PodSecurityContext, sc *corev1.SecurityContext) *int64 {
	if sc != nil && sc.RunAsUser != nil {
		return sc.RunAsUser
	}
	if psc != nil {
		return psc.RunAsUser
	}
	return nil
}

// Capabilities a root container keeps when its securityContext does not
// list capabilities: what reading (backup) or restoring files with their
// owners and modes (restore) needs, all within PodSecurity "baseline".
var (
	rootBackupCaps  = []corev1.Capability{"DAC_OVERRIDE"}
	rootRestoreCaps = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"}
)

// harden completes the pod's security settings after the user's
// runtimeSettings were applied: whatever the user did not set is filled with
// PodSecurity "restricted" values (seccomp RuntimeDefault, no privilege
// escalation, every capability dropped, non-root). A container the user
// asked to run as root (runAsUser: 0, at pod or container level; the
// admission policy decides who may) gets a pod that starts: Stow's default
// runAsNonRoot is removed instead of contradicting it, and the container
// keeps the few capabilities root needs for the job. userPodSC tells whether
// pod.SecurityContext is the user's (never contradicted) or Stow's default.
func harden(pod *corev1.PodSpec, restore, userPodSC bool) {
	if pod.SecurityContext == nil {
		pod.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := pod.SecurityContext
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	anyRoot, allKnownNonRoot := false, true
	each := func(c *corev1.Container) {
		if c.SecurityContext == nil {
			c.SecurityContext = &corev1.SecurityContext{}
		}
		sc := c.SecurityContext
		uid := runAsUser(psc, sc)
		root := uid != nil && *uid == 0
		anyRoot = anyRoot || root
		allKnownNonRoot = allKnownNonRoot && uid != nil && *uid != 0
		if sc.Capabilities == nil {
			sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
			if root {
				sc.Capabilities.Add = append([]corev1.Capability(nil), rootBackupCaps...)
				if restore {
					sc.Capabilities.Add = append([]corev1.Capability(nil), rootRestoreCaps...)
				}
			}
		}
		// The API server refuses allowPrivilegeEscalation false next to
		// privileged or CAP_SYS_ADMIN.
		if sc.AllowPrivilegeEscalation == nil && !ptr.Deref(sc.Privileged, false) && !hasCap(sc.Capabilities.Add, "SYS_ADMIN") {
			sc.AllowPrivilegeEscalation = ptr.To(false)
		}
	}
	for i := range pod.InitContainers {
		each(&pod.InitContainers[i])
	}
	for i := range pod.Containers {
		each(&pod.Containers[i])
	}
	switch {
	case anyRoot && !userPodSC && ptr.Deref(psc.RunAsNonRoot, false):
		// Stow's default said non-root, the user asked for root in a
		// container: the kubelet would refuse the container.
		psc.RunAsNonRoot = nil
	case psc.RunAsNonRoot == nil && allKnownNonRoot:
		psc.RunAsNonRoot = ptr.To(true)
	}
}

// Harden is harden for pods Stow builds elsewhere (the trigger CronJob).
func Harden(pod *corev1.PodSpec, restore, userPodSC bool) { harden(pod, restore, userPodSC) }

func hasCap(caps []corev1.Capability, c corev1.Capability) bool {
	for _, x := range caps {
		if x == c || x == "CAP_"+c {
			return true
		}
	}
	return false
}
