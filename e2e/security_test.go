//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stow "github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/podpolicy"
)

// tenant makes a ServiceAccount in ns that may create Stow objects, PVCs and
// Secrets but not pods or Jobs (a namespace user), and a client acting as it.
func tenant(t *testing.T, ns string) (stow.Interface, string) {
	t.Helper()
	c := context.Background()
	if _, err := e.kube.CoreV1().ServiceAccounts(ns).Create(c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"stow.dev"}, Resources: []string{"repositories", "backupconfigurations", "backupsessions", "restoresessions"}, Verbs: []string{"*"}},
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims", "secrets"}, Verbs: []string{"get", "list", "create"}},
	}}
	if _, err := e.kube.RbacV1().Roles(ns).Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + ns + ":tenant"
	bind(t, ns, "tenant", "Role", "tenant")
	cfg := rest.CopyConfig(e.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	return stow.NewForConfigOrDie(cfg), user
}

func bind(t *testing.T, ns, name, kind, role string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: kind, Name: role},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "tenant", Namespace: ns}}}
	if _, err := e.kube.RbacV1().RoleBindings(ns).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// refused checks that err is an admission refusal naming field, the user
// and the permission they lack.
func refused(t *testing.T, what string, err error, field string, class podpolicy.Class, user, ns string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: admitted; want refused", what)
		return
	}
	msg := err.Error()
	for _, want := range []string{field, user + " may not create pods in namespace " + ns, podpolicy.Permission(class)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: refusal %q does not say %q", what, msg, want)
		}
	}
}

// nodeRepoDir is a directory of the node for a hostPath repository (the
// local cluster's node is this host), or "" when the suite cannot make one.
func nodeRepoDir(t *testing.T, ns string) string {
	if e.hostPathDir == "" {
		return ""
	}
	dir := e.hostPathDir + "/" + ns + "-node-repo"
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// TestSecurityTenantEscalationsRefused: a namespace user without pod rights
// cannot get a root, privileged, node-mounting or other-ServiceAccount pod
// through Stow; the refusal names the field and the missing permission. The
// same spec from a user with pod rights runs, and a tenant an admin granted
// the Stow permission may ask too.
func TestSecurityTenantEscalationsRefused(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	as, user := tenant(t, ns)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "3", "1")
	createRepository(t, ns, "local") // PVC-backed "repo", by the admin

	// A hostPath Repository (node compromise from the first report).
	hostRepo := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "node", Namespace: ns},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "repo-secret", Local: &v1beta1.LocalSpec{
			MountPath: "/node-repo", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/stow-e2e-" + ns}}}}}}
	_, err := as.StowV1beta1().Repositories(ns).Create(c, hostRepo, metav1.CreateOptions{})
	refused(t, "hostPath repository", err, "spec.backend.local.hostPath", podpolicy.HostVolume, user, ns)

	cases := []struct {
		name  string
		set   func(*v1beta1.BackupConfiguration)
		field string
		class podpolicy.Class
	}{
		{"root pod", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))}}
		}, "spec.runtimeSettings.pod.securityContext.runAsUser", podpolicy.Identity},
		{"root container (Stash recipe)", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}
		}, "spec.runtimeSettings.container.securityContext.runAsUser", podpolicy.Identity},
		{"privileged", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}
		}, "spec.runtimeSettings.container.securityContext.privileged", podpolicy.Privileged},
		{"capabilities", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}}
		}, "spec.runtimeSettings.container.securityContext.capabilities.add", podpolicy.Privileged},
		{"another ServiceAccount", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{ServiceAccountName: "default"}
		}, "spec.runtimeSettings.pod.serviceAccountName", podpolicy.ServiceAccount},
		{"nodeName", func(b *v1beta1.BackupConfiguration) {
			b.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{NodeName: "any"}
		}, "spec.runtimeSettings.pod.nodeName", podpolicy.Placement},
		{"exec hook", func(b *v1beta1.BackupConfiguration) {
			b.Spec.Hooks = &v1beta1.BackupHooks{PreBackup: &v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "env"}}}}
		}, "spec.hooks.preBackup.exec", podpolicy.Command},
	}
	for _, tc := range cases {
		bc := backupConfig(ns, "escalate", "data", "0 0 1 1 *", 1)
		tc.set(bc)
		_, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{})
		refused(t, tc.name, err, tc.field, tc.class, user, ns)
	}
	// RestoreSessions are checked the same way.
	rs := &v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "escalate", Namespace: ns}, Spec: v1beta1.RestoreSessionSpec{
		Repository: v1beta1.ObjectRef{Name: "repo"},
		Target:     &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{Name: "data"}},
		RuntimeSettings: v1beta1.RuntimeSettings{Pod: &v1beta1.PodRuntimeSettings{
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}},
	}}
	_, err = as.StowV1beta1().RestoreSessions(ns).Create(c, rs, metav1.CreateOptions{})
	refused(t, "restore tolerations", err, "spec.runtimeSettings.pod.tolerations", podpolicy.Placement, user, ns)

	// A ConfigMap the tenant may not get cannot reach the Job through env
	// (the Job's pod would read it with the operator's rights); a Secret
	// it may get can.
	bc := backupConfig(ns, "env-ref", "data", "0 0 1 1 *", 1)
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "CA", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Key: "ca.crt"}}}}}
	_, err = as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{})
	if want := "spec.runtimeSettings.container.env[*].valueFrom.configMapKeyRef names a ConfigMap that " + user + " may not get in namespace " + ns + " (it names kube-root-ca.crt)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("env from a ConfigMap the tenant may not get: %v; want %q", err, want)
	}
	bc.Spec.RuntimeSettings.Container.Env[0].ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "repo-secret"}, Key: "RESTIC_PASSWORD"}}
	if _, err = as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{}); err != nil {
		t.Errorf("env from a Secret the tenant may get: %v", err)
	}

	// Backup input is only the target volume: a comma-joined value is
	// rejected, not split; a path outside the volume makes it Invalid.
	bc = backupConfig(ns, "comma", "data", "0 0 1 1 *", 1)
	bc.Spec.Target.Paths = []string{"/stow-data,/proc/self"}
	if _, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "spec.target.paths[0]") {
		t.Errorf("comma-joined path: %v", err)
	}
	bc = backupConfig(ns, "outside", "data", "0 0 1 1 *", 1)
	bc.Spec.Target.Paths = []string{"/proc/self"}
	if _, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cd := waitBCCondition(t, ns, "outside", v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid)
	if !strings.Contains(cd.Message, "must be inside the target volume") {
		t.Errorf("path outside the target: %s", cd.Message)
	}
	// A target mounted where the local repository is mounted is Invalid.
	bc = backupConfig(ns, "collide", "data", "0 0 1 1 *", 1)
	bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/repo"}}
	if _, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cd = waitBCCondition(t, ns, "collide", v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid)
	if !strings.Contains(cd.Message, "overlaps the mountPath /repo of the local Repository") {
		t.Errorf("mount collision: %s", cd.Message)
	}

	// A Task an admin wrote for another team (it mounts a node path) is
	// not usable here: the configuration is Invalid and no pod runs.
	builtinTask, err := e.stow.StowV1beta1().Tasks().Get(c, v1beta1.TaskPVCBackup, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	teamTask := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: "team-" + ns}, Spec: *builtinTask.Spec.DeepCopy()}
	teamTask.Spec.AllowedNamespaces = &v1beta1.NamespaceSelection{Names: []string{"team-infra"}}
	teamTask.Spec.Volumes = append(teamTask.Spec.Volumes, corev1.Volume{Name: "node-etc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}})
	if _, err := e.stow.StowV1beta1().Tasks().Create(c, teamTask, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.stow.StowV1beta1().Tasks().Delete(context.Background(), teamTask.Name, metav1.DeleteOptions{})
	})
	bc = backupConfig(ns, "other-task", "data", "0 0 1 1 *", 1)
	bc.Spec.Task.Name = teamTask.Name
	if _, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, bc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cd = waitBCCondition(t, ns, "other-task", v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid)
	if !strings.Contains(cd.Message, fmt.Sprintf("Task %q may not be used in namespace %s", teamTask.Name, ns)) {
		t.Errorf("restricted Task: %s", cd.Message)
	}

	// The same escalation from a user with pod rights (the suite's admin):
	// a root backup into a node directory runs and succeeds, and its pod
	// starts (no runAsNonRoot left next to runAsUser 0).
	repoName := "repo"
	if dir := nodeRepoDir(t, ns); dir != "" {
		hostRepo.Spec.Backend.Local.HostPath.Path = dir
		if _, err := e.stow.StowV1beta1().Repositories(ns).Create(c, hostRepo, metav1.CreateOptions{}); err != nil {
			t.Fatalf("admin hostPath repository: %v", err)
		}
		repoName = "node"
	}
	root := backupConfig(ns, "root", "data", "0 0 1 1 *", 1)
	root.Spec.Repository.Name = repoName
	root.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}
	createBC(t, root)
	waitBCReady(t, ns, "root")
	s := triggerBackup(t, ns, "root", 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("admin's root backup ended %s: %s %+v", s.Status.Phase, s.Status.Reason, s.Status.Targets)
	}
	pods, err := e.kube.CoreV1().Pods(ns).List(c, metav1.ListOptions{LabelSelector: "job-name=" + names.BackupJob(s.Name)})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of %s: %v", s.Name, err)
	}
	// The backup step is the first container: an init container, or the
	// only one when retention runs in it (a Repository with one user).
	p := pods.Items[0]
	backup := append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...)[0]
	if ptr.Deref(p.Spec.SecurityContext.RunAsNonRoot, false) || ptr.Deref(backup.SecurityContext.RunAsUser, -1) != 0 {
		t.Errorf("root backup pod security: pod %+v container %+v", p.Spec.SecurityContext, backup.SecurityContext)
	}

	// An admin grants the tenant the Stow permission: now it may ask.
	bind(t, ns, "tenant-pod-settings", "ClusterRole", "stow-pod-settings")
	granted := backupConfig(ns, "granted", "data", "0 0 1 1 *", 1)
	granted.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}
	waitFor(t, "the tenant's granted root configuration admitted", time.Minute, func(c context.Context) (bool, error) {
		_, err := as.StowV1beta1().BackupConfigurations(ns).Create(c, granted, metav1.CreateOptions{})
		return err == nil, nil // RBAC caches take a moment to see the binding
	})
	waitBCReady(t, ns, "granted")
}

// TestSecurityRestrictedNamespace: in a namespace enforcing PodSecurity
// "restricted", a plain backup and a restore succeed.
func TestSecurityRestrictedNamespace(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	pvc(t, ns, "restored", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "5", "1") // the fixture runs as root: before enforcing
	createRepository(t, ns, "local")
	n, err := e.kube.CoreV1().Namespaces().Get(c, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := e.kube.CoreV1().Namespaces().Update(c, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 1))
	waitBCReady(t, ns, "bc")
	s := triggerBackup(t, ns, "bc", 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("backup in a restricted namespace ended %s: %s %+v", s.Status.Phase, s.Status.Reason, s.Status.Targets)
	}
	rs := &v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "restore", Namespace: ns}, Spec: v1beta1.RestoreSessionSpec{
		Repository: v1beta1.ObjectRef{Name: "repo"},
		Target: &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{Name: "restored"},
			Rules: []v1beta1.Rule{{Snapshots: []string{"latest"}}}},
	}}
	if _, err := e.stow.StowV1beta1().RestoreSessions(ns).Create(c, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitRestore(t, ns, "restore", 4*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore in a restricted namespace ended %s: %s", got.Status.Phase, got.Status.Reason)
	}
}

// TestSecurityContainerConfigErrorFailsFast: a container the kubelet refuses
// (runAsNonRoot with uid 0, the user's own contradiction) fails the session
// within a minute with the kubelet's message.
func TestSecurityContainerConfigErrorFailsFast(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	createRepository(t, ns, "local")
	bc := backupConfig(ns, "bc", "data", "0 0 1 1 *", 1)
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
		RunAsUser: ptr.To(int64(0)), RunAsNonRoot: ptr.To(true)}}
	createBC(t, bc)
	waitBCReady(t, ns, "bc")
	start := time.Now()
	s := triggerBackup(t, ns, "bc", 3*time.Minute)
	took := time.Since(start)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session ended %s", s.Status.Phase)
	}
	all := s.Status.Reason + fmt.Sprint(s.Status.Targets)
	if !strings.Contains(all, "CreateContainerConfigError") || !strings.Contains(all, "non-root") {
		t.Errorf("reason does not carry the kubelet's message: %q %+v", s.Status.Reason, s.Status.Targets)
	}
	if took > time.Minute {
		t.Errorf("failing took %s; want within a minute", took.Round(time.Second))
	}
}

// TestSecurityRestoreOwners: a restore runs as a non-root user by default
// (PodSecurity restricted) and says that it does not restore file owners;
// into a volume it may not write it fails at once with what to do; asked to
// run as root (the suite's admin may), it restores every owner.
func TestSecurityRestoreOwners(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	for _, name := range []string{"data", "plain", "locked"} {
		pvc(t, ns, name, corev1.ReadWriteMany)
	}
	runFixture(t, ns, "data", "write", "/data", "11", "10")
	runFixture(t, ns, "data", "chown", "/data", "1000")
	want := runFixture(t, ns, "data", "manifest", "/data")
	if !strings.Contains(want, " 1000:1000 ") {
		t.Fatalf("fixture data not owned by 1000:\n%s", want)
	}
	runFixture(t, ns, "locked", "rootonly", "/data")
	// S3: a local repository written by a root backup is root's, and a
	// non-root restore could not read it.
	createRepository(t, ns, "s3")
	// Files of uid 1000 with mode 0600: only root reads them all.
	bc := backupConfig(ns, "bc", "data", "0 0 1 1 *", 1)
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}
	createBC(t, bc)
	waitBCReady(t, ns, "bc")
	if s := triggerBackup(t, ns, "bc", 4*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("root backup ended %s: %s %+v", s.Status.Phase, s.Status.Reason, s.Status.Targets)
	}
	restore := func(name, claim string, root bool) *v1beta1.RestoreSession {
		t.Helper()
		rs := &v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target: &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{Name: claim},
				Rules: []v1beta1.Rule{{Snapshots: []string{"latest"}}}},
		}}
		if root {
			rs.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))}}
		}
		if _, err := e.stow.StowV1beta1().RestoreSessions(ns).Create(c, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return waitRestore(t, ns, name, 4*time.Minute)
	}

	// Default: non-root, contents and modes restored, owners not, and the
	// status says so.
	got := restore("plain", "plain", false)
	if got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("default restore ended %s: %s", got.Status.Phase, got.Status.Reason)
	}
	if cd := v1beta1.GetCondition(got.Status.Conditions, v1beta1.RestoreExecutorEnsured); cd == nil || !strings.Contains(cd.Message, "non-root") || !strings.Contains(cd.Message, "runAsUser 0") {
		t.Errorf("default restore does not say that owners are not restored: %+v", cd)
	}
	plain := runFixture(t, ns, "plain", "manifest", "/data")
	if plain != strings.ReplaceAll(want, " 1000:1000 ", " 65534:65534 ") {
		t.Errorf("default restore: want the backed-up contents and modes owned by 65534\nwant (owners aside):\n%s\ngot:\n%s", want, plain)
	}

	// A volume the non-root user may not write: failed at once, with the fix.
	got = restore("locked", "locked", false)
	if got.Status.Phase != v1beta1.RestoreFailed {
		t.Fatalf("restore into a root-only volume ended %s: %s", got.Status.Phase, got.Status.Reason)
	}
	if all := got.Status.Reason + fmt.Sprint(got.Status.Stats); !strings.Contains(all, "cannot write into") || !strings.Contains(all, "runAsUser: 0") {
		t.Errorf("reason does not say what to do: %q %+v", got.Status.Reason, got.Status.Stats)
	}

	// Asked to run as root: every owner comes back.
	got = restore("as-root", "locked", true)
	if got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("root restore ended %s: %s", got.Status.Phase, got.Status.Reason)
	}
	if cd := v1beta1.GetCondition(got.Status.Conditions, v1beta1.RestoreExecutorEnsured); cd == nil || strings.Contains(cd.Message, "non-root") {
		t.Errorf("root restore status: %+v", cd)
	}
	if locked := runFixture(t, ns, "locked", "manifest", "/data"); locked != want {
		t.Errorf("root restore did not restore owners\nwant:\n%s\ngot:\n%s", want, locked)
	}
}
