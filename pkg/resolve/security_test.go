package resolve

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// restrictedViolations checks a pod against PodSecurity "restricted"
// (Kubernetes Pod Security Standards): the rules a Job pod can break.
func restrictedViolations(p corev1.PodSpec) []string {
	var out []string
	psc := p.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		out = append(out, "pod seccompProfile is not RuntimeDefault")
	}
	if ptr.Deref(psc.RunAsUser, 1) == 0 {
		out = append(out, "pod runAsUser 0")
	}
	for _, c := range append(append([]corev1.Container(nil), p.InitContainers...), p.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !ptr.Deref(sc.RunAsNonRoot, ptr.Deref(psc.RunAsNonRoot, false)) {
			out = append(out, c.Name+": runAsNonRoot is not true")
		}
		if ptr.Deref(sc.RunAsUser, 1) == 0 {
			out = append(out, c.Name+": runAsUser 0")
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
			out = append(out, c.Name+": allowPrivilegeEscalation is not false")
		}
		if ptr.Deref(sc.Privileged, false) {
			out = append(out, c.Name+": privileged")
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			out = append(out, c.Name+": capabilities do not drop ALL")
		} else {
			for _, a := range sc.Capabilities.Add {
				if a != "NET_BIND_SERVICE" {
					out = append(out, fmt.Sprintf("%s: adds %s", c.Name, a))
				}
			}
		}
	}
	for _, v := range p.Volumes {
		if v.HostPath != nil {
			out = append(out, "hostPath volume "+v.Name)
		}
	}
	return out
}

func TestPlainJobsAreRestricted(t *testing.T) {
	job := mustBackupJob(t, backupConfig(), s3Repo())
	if v := restrictedViolations(job.Spec.Template.Spec); len(v) > 0 {
		t.Errorf("backup pod is not restricted: %v", v)
	}
	tasks, fns := builtins()
	jobs, _, err := RestoreJobs(restoreSession(), s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := jobs[0].Spec.Template.Spec
	if v := restrictedViolations(p); len(v) > 0 {
		t.Errorf("restore pod is not restricted: %v", v)
	}
	if ptr.Deref(p.SecurityContext.RunAsUser, -1) != nobody || RestoresOwners(&p) {
		t.Errorf("restore runs as %v (restores owners: %v); want nobody", p.SecurityContext.RunAsUser, RestoresOwners(&p))
	}
}

// A restore asked to run as root (to give files their owners back) gets a
// pod that starts, with only the capabilities restoring owners needs
// (PodSecurity baseline).
func TestRootRestoreRestoresOwners(t *testing.T) {
	tasks, fns := builtins()
	rs := restoreSession()
	rs.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))}}
	jobs, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := jobs[0].Spec.Template.Spec
	if ptr.Deref(p.SecurityContext.RunAsUser, -1) != 0 || ptr.Deref(p.SecurityContext.RunAsNonRoot, false) || !RestoresOwners(&p) {
		t.Errorf("root restore pod security = %+v", p.SecurityContext)
	}
	for _, c := range append(p.InitContainers, p.Containers...) {
		if sc := c.SecurityContext; sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Add) != "[CHOWN DAC_OVERRIDE FOWNER FSETID]" || ptr.Deref(sc.AllowPrivilegeEscalation, true) {
			t.Errorf("root restore container %s security = %+v", c.Name, sc)
		}
	}
	// One non-root container (the user's container override) and owners
	// are not all restored.
	rs.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(1000))}}
	jobs, _, _ = RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if RestoresOwners(&jobs[0].Spec.Template.Spec) {
		t.Errorf("a uid-1000 restore claims to restore owners")
	}
}

// The Stash recipe for unreadable files (runtimeSettings.container.
// securityContext: {runAsUser: 0}) must give a pod the kubelet starts: no
// runAsNonRoot true left from Stow's default next to uid 0.
func TestRootContainerStarts(t *testing.T) {
	bc := backupConfig()
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}
	job := mustBackupJob(t, bc, s3Repo())
	p := job.Spec.Template.Spec
	if ptr.Deref(p.SecurityContext.RunAsNonRoot, false) {
		t.Fatalf("pod keeps runAsNonRoot true next to a root container: %+v", p.SecurityContext)
	}
	for _, c := range allContainers(job) {
		sc := c.SecurityContext
		if ptr.Deref(sc.RunAsUser, -1) != 0 || ptr.Deref(sc.RunAsNonRoot, false) {
			t.Errorf("%s: %+v", c.Name, sc)
		}
		if sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop, sc.Capabilities.Add) != "[ALL] [DAC_OVERRIDE]" {
			t.Errorf("%s: root reads with DAC_OVERRIDE only, got %+v", c.Name, sc.Capabilities)
		}
	}
	// A user's explicit contradiction is theirs: Stow does not rewrite it
	// (the watchdog reports the kubelet's refusal).
	bc.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}}
	job = mustBackupJob(t, bc, s3Repo())
	if !ptr.Deref(job.Spec.Template.Spec.SecurityContext.RunAsNonRoot, false) {
		t.Errorf("the user's runAsNonRoot was removed")
	}
}

func TestUserSettingsAreCompletedNotReplaced(t *testing.T) {
	bc := backupConfig()
	bc.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), FSGroup: ptr.To(int64(2000))}}
	job := mustBackupJob(t, bc, s3Repo())
	p := job.Spec.Template.Spec
	if v := restrictedViolations(p); len(v) > 0 {
		t.Errorf("uid 1000 pod is not restricted: %v", v)
	}
	if ptr.Deref(p.SecurityContext.FSGroup, 0) != 2000 || ptr.Deref(p.SecurityContext.RunAsUser, 0) != 1000 {
		t.Errorf("user pod securityContext lost: %+v", p.SecurityContext)
	}
	// privileged: the API server refuses allowPrivilegeEscalation false next to it.
	bc = backupConfig()
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}
	for _, c := range allContainers(mustBackupJob(t, bc, s3Repo())) {
		if c.SecurityContext.AllowPrivilegeEscalation != nil {
			t.Errorf("%s: allowPrivilegeEscalation set next to privileged", c.Name)
		}
	}
}
