//go:build e2e

package e2e

// Fault and bad-input suite (issue 7): each case asserts a final state (phase,
// condition, Event, snapshot count), not merely "no crash". The table of cases
// and outcomes is docs/reliability.md.

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// faultRepo creates Repository "repo" with Secret "repo-secret" holding a
// password unique to this test, so the log checks can look for it. For s3
// the endpoint and keys are overridable (the MinIO test brings its own).
func faultRepo(t *testing.T, ns, kind string, s3 *ownMinIO) (pw string) {
	t.Helper()
	c := context.Background()
	pw = "pw-" + rand.String(20)
	b, data := backend(t, ns, kind)
	data["RESTIC_PASSWORD"] = pw
	if s3 != nil {
		b.S3 = &v1beta1.S3Spec{Endpoint: s3.endpoint, Bucket: "fault", Prefix: ns}
		data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"] = s3.key, s3.secret
	}
	if _, err := e.kube.CoreV1().Secrets(ns).Create(c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-secret", Namespace: ns}, StringData: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stow.StowV1beta1().Repositories(ns).Create(c, &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns}, Spec: v1beta1.RepositorySpec{Backend: b}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pw
}

// startSession creates a BackupSession for bc without waiting for it.
func startSession(t *testing.T, ns, bcName string) string {
	t.Helper()
	c := context.Background()
	bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, bcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.stow.StowV1beta1().BackupSessions(ns).Create(c, &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{GenerateName: bcName + "-fault-", Namespace: ns, Labels: names.SessionLabels(bc)},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: bcName}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Name
}

func getSession(t *testing.T, ns, name string) *v1beta1.BackupSession {
	t.Helper()
	s, err := e.stow.StowV1beta1().BackupSessions(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitSessionFinal(t *testing.T, ns, name string, timeout time.Duration) *v1beta1.BackupSession {
	t.Helper()
	var got *v1beta1.BackupSession
	waitFor(t, "BackupSession "+name+" final", timeout, func(c context.Context) (bool, error) {
		s, err := e.stow.StowV1beta1().BackupSessions(ns).Get(c, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = s
		return s.Status.Phase.IsFinal(), nil
	})
	return got
}

// waitStepRunning waits until the backup Job's pod of session runs the
// container (init or main) named step, and returns the pod.
func waitStepRunning(t *testing.T, ns, session, step string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, "container "+step+" of session "+session+" running", 3*time.Minute, func(c context.Context) (bool, error) {
		l, err := e.kube.CoreV1().Pods(ns).List(c, metav1.ListOptions{LabelSelector: "job-name=" + names.BackupJob(session)})
		if err != nil {
			return false, nil
		}
		for i := range l.Items {
			p := &l.Items[i]
			for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				if cs.Name == step && cs.State.Running != nil {
					pod = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	return pod
}

// waitEvent waits for an Event of type typ and reason on the named object
// (reason "" matches any) and returns its message.
func waitEvent(t *testing.T, ns, kind, name, typ, reason string) string {
	t.Helper()
	var msg string
	waitFor(t, fmt.Sprintf("%s Event %q on %s %s", typ, reason, kind, name), time.Minute, func(c context.Context) (bool, error) {
		l, err := e.kube.CoreV1().Events(ns).List(c, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, ev := range l.Items {
			if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name && ev.Type == typ && (reason == "" || ev.Reason == reason) {
				msg = ev.Reason + ": " + ev.Message
				return true, nil
			}
		}
		return false, nil
	})
	return msg
}

func countEvents(t *testing.T, ns, kind, name, reason string) int {
	t.Helper()
	l, err := e.kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range l.Items {
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name && ev.Reason == reason {
			n += int(max(ev.Count, 1))
		}
	}
	return n
}

// waitBCCondition waits until BackupConfiguration name has the condition
// with that status and reason, and the phase; it returns the condition.
func waitBCCondition(t *testing.T, ns, name, typ string, st v1beta1.ConditionStatus, reason string, phase v1beta1.BackupInvokerPhase) v1beta1.Condition {
	t.Helper()
	var got v1beta1.Condition
	waitFor(t, fmt.Sprintf("BackupConfiguration %s %s=%s/%s phase %s", name, typ, st, reason, phase), time.Minute, func(c context.Context) (bool, error) {
		bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		cd := v1beta1.GetCondition(bc.Status.Conditions, typ)
		if cd == nil || cd.Status != st || cd.Reason != reason || bc.Status.Phase != phase {
			return false, nil
		}
		got = *cd
		return true, nil
	})
	if got.Message == "" {
		t.Errorf("condition %s has no message", typ)
	}
	return got
}

// snapshotCount is Repository "repo"'s snapshot count once it is want, or
// what it is after a while: the Repository controller derives it from a
// session right after the session's result.
func snapshotCount(t *testing.T, ns string, want int64) int64 {
	t.Helper()
	return settle(t, want, func() int64 {
		r, err := e.stow.StowV1beta1().Repositories(ns).Get(context.Background(), "repo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.SnapshotCount
	})
}

// assertNoSecretInLogs reads the operator's logs and every container log of
// every pod left in ns and fails if any secret value appears in them.
func assertNoSecretInLogs(t *testing.T, ns string, secrets ...string) {
	t.Helper()
	c := context.Background()
	check := func(where, log string) {
		for _, s := range secrets {
			if s != "" && strings.Contains(log, s) {
				t.Errorf("secret value found in %s", where)
			}
		}
	}
	read := func(pns string) int {
		pods, err := e.kube.CoreV1().Pods(pns).List(c, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range pods.Items {
			for _, ct := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
				raw, err := e.kube.CoreV1().Pods(pns).GetLogs(p.Name, &corev1.PodLogOptions{Container: ct.Name}).DoRaw(c)
				if err != nil {
					continue // a container that never started has no log
				}
				n++
				check(pns+"/"+p.Name+"/"+ct.Name, string(raw))
			}
			for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
				if cs.State.Terminated != nil {
					check(pns+"/"+p.Name+"/"+cs.Name+" termination message", cs.State.Terminated.Message)
				}
			}
		}
		return n
	}
	if read(e.operatorNS) == 0 {
		t.Errorf("no operator log could be read from %s", e.operatorNS)
	}
	read(ns)
	// Status and Events are read by anyone who can list them: no secrets there either.
	if evs, err := e.kube.CoreV1().Events(ns).List(c, metav1.ListOptions{}); err == nil {
		for _, ev := range evs.Items {
			check("Event "+ev.Reason, ev.Message)
		}
	}
}

// assertJobPodHardened checks a real backup Job pod: non-root (65534), no
// service-account token, nothing mounted from the API.
func assertJobPodHardened(t *testing.T, ns, session string) {
	t.Helper()
	l, err := e.kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "job-name=" + names.BackupJob(session)})
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("no pod of backup Job %s: %v", names.BackupJob(session), err)
	}
	p := l.Items[0]
	sc := p.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65534 {
		t.Errorf("backup pod %s is not non-root 65534: %+v", p.Name, sc)
	}
	if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		t.Errorf("backup pod %s automounts a service-account token", p.Name)
	}
	for _, v := range p.Spec.Volumes {
		if v.Projected != nil || strings.HasPrefix(v.Name, "kube-api-access") {
			t.Errorf("backup pod %s has an API token volume %s", p.Name, v.Name)
		}
	}
	for _, ct := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		for _, m := range ct.VolumeMounts {
			if strings.HasPrefix(m.MountPath, "/var/run/secrets/kubernetes.io") {
				t.Errorf("container %s mounts %s", ct.Name, m.MountPath)
			}
		}
		if ct.SecurityContext != nil && ct.SecurityContext.RunAsUser != nil && *ct.SecurityContext.RunAsUser == 0 {
			t.Errorf("container %s runs as root", ct.Name)
		}
	}
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("hardened backup pod %s did not succeed: %s", p.Name, p.Status.Phase)
	}
}

// dataSetup makes PVC "data" with files and a Ready configuration "bc".
func dataSetup(t *testing.T, ns, kind string, bigMB int, s3 *ownMinIO) string {
	t.Helper()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "11", "8")
	if bigMB > 0 {
		runFixture(t, ns, "data", "big", "/data", fmt.Sprint(bigMB))
	}
	pw := faultRepo(t, ns, kind, s3)
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 10))
	waitBCReady(t, ns, "bc")
	return pw
}

// TestFaultBackupPodKilledMidUpload: the pod dies while restic uploads. The
// session fails with a reason within 60 s, the next session removes the
// stale lock (Event StaleLocksRemoved), succeeds, and restic check passes.
// The successful session's pod is also checked for hardening.
func TestFaultBackupPodKilledMidUpload(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pw := dataSetup(t, ns, "local", 300, nil)

	name := startSession(t, ns, "bc")
	pod := waitStepRunning(t, ns, name, "pvc-backup-0")
	repoDir := pvHostDir(t, ns, "repo")
	if repoDir != "" {
		// On the local cluster the repository is a host dir: wait until
		// restic holds its lock and has written data, i.e. mid-upload.
		waitFor(t, "restic lock and first packs in "+repoDir, 2*time.Minute, func(context.Context) (bool, error) {
			locks, _ := os.ReadDir(filepath.Join(repoDir, "locks"))
			packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
			return len(locks) > 0 && len(packs) > 0, nil
		})
		// A pod deletion gives restic a SIGTERM, on which it removes its
		// lock; a node crash or OOM kill does not. SIGKILL the pod's
		// processes first (the node is this host) so the lock stays.
		host := pod.Spec.Hostname // Stow sets the lock hostname restic records
		if host == "" {
			host = pod.Name
		}
		if n := killPodProcesses(t, host); n == 0 {
			t.Fatalf("found no process of pod %s to kill", pod.Name)
		}
		if locks, _ := os.ReadDir(filepath.Join(repoDir, "locks")); len(locks) == 0 {
			t.Fatalf("no restic lock left behind by the killed backup")
		}
	}
	zero := int64(0)
	killed := time.Now()
	if err := e.kube.CoreV1().Pods(ns).Delete(c, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	s := waitSessionFinal(t, ns, name, 2*time.Minute)
	took := time.Since(killed)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session of a killed pod ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	if took > 60*time.Second {
		t.Errorf("session failed %s after the kill; want <= 60s", took.Round(time.Second))
	}
	if s.Status.Reason == "" {
		t.Errorf("failed session has no reason")
	}
	t.Logf("killed session: %s after %s: %s", s.Status.Phase, took.Round(time.Second), s.Status.Reason)
	waitEvent(t, ns, v1beta1.KindBackupSession, name, corev1.EventTypeWarning, "")

	next := triggerBackup(t, ns, "bc", 4*time.Minute)
	if next.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session after the kill ended %s: %s", next.Status.Phase, next.Status.Reason)
	}
	if repoDir != "" {
		msg := waitEvent(t, ns, v1beta1.KindBackupSession, next.Name, corev1.EventTypeNormal, "StaleLocksRemoved")
		t.Logf("next session: %s", msg)
	}
	// Sessions do not check the repository; a check run now must pass.
	repo := requestMaintenance(t, ns, v1beta1.MaintenanceCheck, v1beta1.MaintenanceRefresh)
	if r := runOf(repo, v1beta1.MaintenanceCheck); r.Succeeded == nil || !*r.Succeeded ||
		repo.Status.Integrity == nil || !*repo.Status.Integrity || repo.Status.SnapshotCount != 1 {
		t.Errorf("repository after recovery: check %+v integrity=%v snapshots=%d; want a passing check, true, 1", r, repo.Status.Integrity, repo.Status.SnapshotCount)
	}
	if repoDir != "" {
		if locks, _ := os.ReadDir(filepath.Join(repoDir, "locks")); len(locks) != 0 {
			t.Errorf("%d restic locks left after the recovery session", len(locks))
		}
	}
	assertJobPodHardened(t, ns, next.Name)
	assertNoSecretInLogs(t, ns, pw)
}

// pvHostDir is the host directory of a claim's hostPath PV (the local
// cluster's provisioner), or "" on other clusters.
func pvHostDir(t *testing.T, ns, claim string) string {
	t.Helper()
	c := context.Background()
	pc, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, claim, metav1.GetOptions{})
	if err != nil || pc.Spec.VolumeName == "" {
		return ""
	}
	pv, err := e.kube.CoreV1().PersistentVolumes().Get(c, pc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.HostPath == nil {
		return ""
	}
	if _, err := os.Stat(pv.Spec.HostPath.Path); err != nil {
		return "" // the node is not this host
	}
	return pv.Spec.HostPath.Path
}

// killPodProcesses SIGKILLs the processes of one pod running on this host,
// found by the HOSTNAME (the pod name) in their environment; it returns how
// many it killed.
func killPodProcesses(t *testing.T, hostname string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	n := 0
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "HOSTNAME="+hostname {
				var pid int
				if _, err := fmt.Sscanf(p, "/proc/%d/environ", &pid); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
					n++
				}
			}
		}
	}
	return n
}

// TestFaultOperatorKilledDuringSession: the operator pod is killed while a
// session runs; the Deployment restarts it and the session completes with
// its one Job, the right phase and metrics. Disruptive: runs alone.
func TestFaultOperatorKilledDuringSession(t *testing.T) {
	e2eExclusive(t)
	ns := namespace(t)
	c := context.Background()
	pw := dataSetup(t, ns, "local", 150, nil)

	name := startSession(t, ns, "bc")
	waitStepRunning(t, ns, name, "pvc-backup-0")
	job, err := e.kube.BatchV1().Jobs(ns).Get(c, names.BackupJob(name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := getSession(t, ns, name); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("session is %s, want Running before the kill", s.Status.Phase)
	}
	killOperator(t)

	s := waitSessionFinal(t, ns, name, 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session across an operator restart ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	jobs, err := e.kube.BatchV1().Jobs(ns).List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	backupJobs := 0
	for _, j := range jobs.Items {
		if strings.HasPrefix(j.Name, "stow-backup-") {
			backupJobs++
			if j.UID != job.UID {
				t.Errorf("Job %s (uid %s) is not the Job that ran before the restart (uid %s)", j.Name, j.UID, job.UID)
			}
		}
	}
	if backupJobs != 1 {
		t.Errorf("%d backup Jobs for one session; want 1", backupJobs)
	}
	if n := countEvents(t, ns, v1beta1.KindBackupSession, name, "BackupJobCreated"); n != 1 {
		t.Errorf("BackupJobCreated recorded %d times; want 1", n)
	}
	if n := snapshotCount(t, ns, 1); n != 1 {
		t.Errorf("repository has %d snapshots; want 1", n)
	}
	waitSessionMetrics(t, ns, "bc")
	assertNoSecretInLogs(t, ns, pw)
}

// killOperator deletes the operator pods with no grace period and waits for
// the Deployment's replacement to be Ready.
func killOperator(t *testing.T) {
	t.Helper()
	c := context.Background()
	pods, err := e.kube.CoreV1().Pods(e.operatorNS).List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	zero := int64(0)
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, "stow-operator-") {
			continue
		}
		old[p.Name] = true
		if err := e.kube.CoreV1().Pods(e.operatorNS).Delete(c, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	if len(old) == 0 {
		t.Fatalf("no operator pod in %s", e.operatorNS)
	}
	waitFor(t, "a new operator pod Ready", 3*time.Minute, func(c context.Context) (bool, error) {
		pods, err := e.kube.CoreV1().Pods(e.operatorNS).List(c, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if old[p.Name] || !strings.HasPrefix(p.Name, "stow-operator-") || p.DeletionTimestamp != nil {
				continue
			}
			for _, cd := range p.Status.Conditions {
				if cd.Type == corev1.PodReady && cd.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
		}
		return false, nil
	})
}

func waitSessionMetrics(t *testing.T, ns, invoker string) {
	t.Helper()
	want := []string{"stash_backup_session_success", "stash_backup_target_success", "stash_backup_host_backup_success"}
	var last string
	waitFor(t, "session metrics of "+invoker, 90*time.Second, func(c context.Context) (bool, error) {
		raw, err := e.kube.CoreV1().Services(e.operatorNS).ProxyGet("http", "stow-operator", "pushgateway", "/metrics", nil).DoRaw(c)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
		if err != nil {
			return false, fmt.Errorf("parse /metrics: %v", err)
		}
		var missing []string
		for _, n := range want {
			if !hasSample(families[n], map[string]string{"namespace": ns, "invoker_name": invoker}, 1) {
				missing = append(missing, n)
			}
		}
		last = strings.Join(missing, ", ")
		return len(missing) == 0, nil
	})
	if last != "" {
		t.Logf("metrics: %s", last)
	}
}

// ownMinIO is a MinIO server only the MinIO test uses, on the host address
// pods reach the suite's MinIO at, so stopping it disturbs no other test.
type ownMinIO struct {
	bin, dir, addr, endpoint, key, secret string
	cmd                                   *exec.Cmd
	exited                                chan struct{}
}

func startOwnMinIO(t *testing.T) *ownMinIO {
	t.Helper()
	if e.s3Endpoint == "" {
		t.Fatal("STOW_E2E_S3_ENDPOINT is not set: hack/e2e.sh starts MinIO and sets it")
	}
	u, err := url.Parse(e.s3Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "../hack/tools.sh", "--print", "minio").Output()
	if err != nil {
		t.Fatalf("find minio: %v", err)
	}
	l, err := net.Listen("tcp", u.Hostname()+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := &ownMinIO{bin: strings.TrimSpace(string(out)), dir: t.TempDir(), addr: addr, endpoint: "http://" + addr,
		key: "fault-" + rand.String(6), secret: "s3-" + rand.String(24)}
	m.start(t)
	t.Cleanup(m.stop)
	// The bucket, as hack/e2e.sh makes its own.
	if out, err := exec.Command("curl", "-fsS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", m.key+":"+m.secret,
		"-X", "PUT", m.endpoint+"/fault").CombinedOutput(); err != nil {
		t.Fatalf("create bucket: %v: %s", err, out)
	}
	return m
}

func (m *ownMinIO) start(t *testing.T) {
	t.Helper()
	m.cmd = exec.Command(m.bin, "server", "--quiet", "--address", m.addr, "--console-address", strings.Split(m.addr, ":")[0]+":0", m.dir)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.key, "MINIO_ROOT_PASSWORD="+m.secret, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(m.cmd, m.exited)
	waitFor(t, "MinIO at "+m.endpoint+" ready", time.Minute, func(context.Context) (bool, error) {
		select {
		case <-m.exited:
			return false, fmt.Errorf("minio exited")
		default:
		}
		return exec.Command("curl", "-fsS", "-o", "/dev/null", m.endpoint+"/minio/health/ready").Run() == nil, nil
	})
}

// stop kills MinIO outright, as a crash or a network cut would look to restic.
func (m *ownMinIO) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// TestFaultMinIOStoppedDuringBackup: the S3 backend vanishes mid-backup. The
// session fails with a backend reason in bounded time; once the backend is
// back, the next session succeeds.
func TestFaultMinIOStoppedDuringBackup(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	m := startOwnMinIO(t)
	pw := dataSetup(t, ns, "s3", 300, m)

	name := startSession(t, ns, "bc")
	waitStepRunning(t, ns, name, "pvc-backup-0")
	waitFor(t, "first packs uploaded to MinIO", 2*time.Minute, func(context.Context) (bool, error) {
		packs, _ := filepath.Glob(filepath.Join(m.dir, "fault", ns, "data", "*", "*"))
		return len(packs) > 0, nil
	})
	stopped := time.Now()
	m.stop()
	s := waitSessionFinal(t, ns, name, 5*time.Minute)
	t.Logf("session with the backend gone: %s after %s: %s", s.Status.Phase, time.Since(stopped).Round(time.Second), s.Status.Reason)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session ended %s; want Failed", s.Status.Phase)
	}
	why := s.Status.Reason + fmt.Sprint(s.Status.Targets)
	if !strings.Contains(why, "connection refused") && !strings.Contains(why, m.addr) && !strings.Contains(strings.ToLower(why), "backend") {
		t.Errorf("reason does not name the backend: %s", why)
	}
	waitEvent(t, ns, v1beta1.KindBackupSession, name, corev1.EventTypeWarning, "")

	m.start(t)
	if next := triggerBackup(t, ns, "bc", 5*time.Minute); next.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session after the backend returned ended %s: %s", next.Status.Phase, next.Status.Reason)
	}
	if n := snapshotCount(t, ns, 1); n != 1 {
		t.Errorf("repository has %d snapshots; want 1", n)
	}
	assertNoSecretInLogs(t, ns, pw, m.secret)
}

// TestFaultBadConfiguration: a configuration that cannot back up says why in
// a condition, a phase and a Warning Event, and creates no session.
func TestFaultBadConfiguration(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, ns string, bc *v1beta1.BackupConfiguration)
		cond   string
		reason string
		phase  v1beta1.BackupInvokerPhase
		event  string
	}{
		{"missing-secret", func(t *testing.T, ns string, bc *v1beta1.BackupConfiguration) {
			if _, err := e.stow.StowV1beta1().Repositories(ns).Create(context.Background(), &v1beta1.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
				Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "no-such-secret",
					S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:1", Bucket: "b"}}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}, v1beta1.BackendSecretFound, v1beta1.BackendSecretNotAvailable, v1beta1.BackupInvokerNotReady, "BackendSecretNotFound"},
		{"missing-repository", func(t *testing.T, ns string, bc *v1beta1.BackupConfiguration) {},
			v1beta1.RepositoryFound, v1beta1.RepositoryNotAvailable, v1beta1.BackupInvokerNotReady, "RepositoryNotFound"},
		{"unknown-task", func(t *testing.T, ns string, bc *v1beta1.BackupConfiguration) {
			faultRepo(t, ns, "local", nil)
			bc.Spec.Task.Name = "no-such-task"
		}, v1beta1.TaskFound, v1beta1.TaskNotAvailable, v1beta1.BackupInvokerNotReady, "TaskNotFound"},
		{"invalid-cron", func(t *testing.T, ns string, bc *v1beta1.BackupConfiguration) {
			faultRepo(t, ns, "local", nil)
			bc.Spec.Schedule = "61 25 * * *"
		}, v1beta1.ValidationPassed, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid, "InvalidSpec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eShared(t)
			ns := namespace(t)
			pvc(t, ns, "data", corev1.ReadWriteMany)
			bc := backupConfig(ns, "bc", "data", "*/1 * * * *", 3)
			tc.mutate(t, ns, bc)
			if _, err := e.stow.StowV1beta1().BackupConfigurations(ns).Create(context.Background(), bc, metav1.CreateOptions{}); err != nil {
				// Rejected at admission is a clear outcome too; record it.
				t.Logf("rejected by the API server: %v", err)
				if tc.name != "invalid-cron" {
					t.Fatal(err)
				}
				return
			}
			cd := waitBCCondition(t, ns, "bc", tc.cond, v1beta1.ConditionFalse, tc.reason, tc.phase)
			ev := waitEvent(t, ns, v1beta1.KindBackupConfiguration, "bc", corev1.EventTypeWarning, tc.event)
			t.Logf("%s: condition %q; event %q", tc.name, cd.Message, ev)
			cj, err := e.kube.BatchV1().CronJobs(ns).Get(context.Background(), names.CronJob("bc"), metav1.GetOptions{})
			if err == nil && (cj.Spec.Suspend == nil || !*cj.Spec.Suspend) {
				t.Errorf("CronJob of a configuration that cannot back up is not suspended")
			}
		})
	}
}

// startRestore creates a RestoreSession of PVC "data" from "repo".
func startRestore(t *testing.T, ns, name string, rules []v1beta1.Rule) error {
	t.Helper()
	_, err := e.stow.StowV1beta1().RestoreSessions(ns).Create(context.Background(), &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target:     &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data"}, Rules: rules},
		},
	}, metav1.CreateOptions{})
	return err
}

// TestFaultBadSessionInputs: inputs that only show when a session runs. Each
// ends in a final phase with a reason and a Warning Event; snapshots taken
// before stay (the next good backup adds one to them).
func TestFaultBadSessionInputs(t *testing.T) {
	// backedUp makes a repository with one snapshot of "data".
	backedUp := func(t *testing.T, ns string) string {
		pw := dataSetup(t, ns, "local", 0, nil)
		if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("first backup ended %s: %s", s.Status.Phase, s.Status.Reason)
		}
		if n := snapshotCount(t, ns, 1); n != 1 {
			t.Fatalf("repository has %d snapshots after one backup", n)
		}
		return pw
	}
	failed := func(t *testing.T, ns string, s *v1beta1.BackupSession, want ...string) {
		t.Helper()
		if s.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("session %s ended %s (%s); want Failed", s.Name, s.Status.Phase, s.Status.Reason)
		}
		why := s.Status.Reason + fmt.Sprint(s.Status.Targets)
		for _, w := range want {
			if !strings.Contains(strings.ToLower(why), strings.ToLower(w)) {
				t.Errorf("failure reason does not mention %q: %s", w, why)
			}
		}
		ev := waitEvent(t, ns, v1beta1.KindBackupSession, s.Name, corev1.EventTypeWarning, "")
		t.Logf("session %s: %s; event %s", s.Name, s.Status.Reason, ev)
	}
	cases := []struct {
		name string
		run  func(t *testing.T, ns string) []string // returns secrets to look for in logs
	}{
		{"wrong-password", func(t *testing.T, ns string) []string {
			pw := backedUp(t, ns)
			setPassword(t, ns, "wrong-"+rand.String(16))
			failed(t, ns, triggerBackup(t, ns, "bc", 3*time.Minute), "password")
			setPassword(t, ns, pw)
			if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
				t.Fatalf("backup with the right password again ended %s: %s", s.Status.Phase, s.Status.Reason)
			}
			if n := snapshotCount(t, ns, 2); n != 2 {
				t.Errorf("repository has %d snapshots; want the first one kept plus one", n)
			}
			return []string{pw}
		}},
		{"unknown-function", func(t *testing.T, ns string) []string {
			task := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: v1beta1.TaskSpec{
				Steps: []v1beta1.FunctionRef{{Name: "no-such-function"}, {Name: v1beta1.FunctionUpdateStatus}}}}
			if _, err := e.stow.StowV1beta1().Tasks().Create(context.Background(), task, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.stow.StowV1beta1().Tasks().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
			pvc(t, ns, "data", corev1.ReadWriteMany)
			pw := faultRepo(t, ns, "local", nil)
			bc := backupConfig(ns, "bc", "data", "0 0 1 1 *", 3)
			bc.Spec.Task.Name = ns
			createBC(t, bc)
			waitBCReady(t, ns, "bc")
			failed(t, ns, triggerBackup(t, ns, "bc", 2*time.Minute), "no-such-function")
			return []string{pw}
		}},
		{"pvc-deleted", func(t *testing.T, ns string) []string {
			pw := backedUp(t, ns)
			if err := e.kube.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), "data", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			// The finished backup pod would hold the claim (pvc-protection):
			// Stow releases it, so deleting the PVC does not hang.
			waitEvent(t, ns, v1beta1.KindBackupConfiguration, "bc", corev1.EventTypeNormal, "TargetReleased")
			waitFor(t, "PVC data gone", time.Minute, func(c context.Context) (bool, error) {
				_, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, "data", metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			waitBCCondition(t, ns, "bc", v1beta1.BackupTargetFound, v1beta1.ConditionFalse, v1beta1.TargetNotAvailable, v1beta1.BackupInvokerNotReady)
			waitEvent(t, ns, v1beta1.KindBackupConfiguration, "bc", corev1.EventTypeWarning, "TargetNotFound")
			s := triggerBackup(t, ns, "bc", 2*time.Minute)
			if s.Status.Phase != v1beta1.BackupSessionFailed && s.Status.Phase != v1beta1.BackupSessionSkipped {
				t.Fatalf("session of a deleted PVC ended %s; want Failed or Skipped", s.Status.Phase)
			}
			if s.Status.Reason == "" {
				t.Errorf("session of a deleted PVC has no reason")
			}
			t.Logf("session of a deleted PVC: %s: %s", s.Status.Phase, s.Status.Reason)
			if n := snapshotCount(t, ns, 1); n != 1 {
				t.Errorf("repository has %d snapshots; want 1", n)
			}
			return []string{pw}
		}},
		{"rwo-in-use", func(t *testing.T, ns string) []string {
			pvc(t, ns, "data", corev1.ReadWriteOnce)
			runFixture(t, ns, "data", "write", "/data", "5", "6")
			holder := holdPVC(t, ns, "data")
			pw := faultRepo(t, ns, "local", nil)
			createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 3))
			waitBCReady(t, ns, "bc")
			// RWO is per node: on the node of the app using it the backup
			// pod mounts it too, so the backup succeeds while the app runs.
			s := triggerBackup(t, ns, "bc", 3*time.Minute)
			if s.Status.Phase != v1beta1.BackupSessionSucceeded {
				t.Fatalf("backup of an RWO PVC in use ended %s: %s", s.Status.Phase, s.Status.Reason)
			}
			if p, err := e.kube.CoreV1().Pods(ns).Get(context.Background(), holder, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodRunning {
				t.Errorf("the app holding the PVC was disturbed: %v", err)
			}
			return []string{pw}
		}},
		{"shared-repository", func(t *testing.T, ns string) []string {
			pvc(t, ns, "data", corev1.ReadWriteMany)
			pvc(t, ns, "data2", corev1.ReadWriteMany)
			runFixture(t, ns, "data", "big", "/data", "40")
			runFixture(t, ns, "data2", "big", "/data", "40")
			pw := faultRepo(t, ns, "local", nil)
			createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 3))
			createBC(t, backupConfig(ns, "bc2", "data2", "0 0 1 1 *", 3))
			waitBCReady(t, ns, "bc")
			waitBCReady(t, ns, "bc2")
			a, b := startSession(t, ns, "bc"), startSession(t, ns, "bc2")
			sa, sb := waitSessionFinal(t, ns, a, 4*time.Minute), waitSessionFinal(t, ns, b, 4*time.Minute)
			for _, s := range []*v1beta1.BackupSession{sa, sb} {
				if s.Status.Phase != v1beta1.BackupSessionSucceeded {
					t.Errorf("session %s ended %s: %s", s.Name, s.Status.Phase, s.Status.Reason)
				}
			}
			// Backups of different PVCs share the repository (restic's
			// non-exclusive locks) and their retention steps wait for
			// each other's exclusive locks: both succeed, both Jobs were
			// admitted on one location, and no one's lock was removed.
			la := jobLocation(t, ns, names.BackupJob(a))
			if lb := jobLocation(t, ns, names.BackupJob(b)); la == "" || la != lb {
				t.Errorf("Jobs of one repository on locations %q and %q", la, lb)
			}
			for _, name := range []string{a, b} {
				if n := countEvents(t, ns, v1beta1.KindBackupSession, name, "StaleLocksRemoved"); n != 0 {
					t.Errorf("session %s removed locks of a repository nobody died on", name)
				}
			}
			if n := snapshotCount(t, ns, 2); n != 2 {
				t.Errorf("repository has %d snapshots; want 2", n)
			}
			return []string{pw}
		}},
		{"restore-missing-snapshot", func(t *testing.T, ns string) []string {
			pw := backedUp(t, ns)
			before := runFixture(t, ns, "data", "manifest", "/data")
			if err := startRestore(t, ns, "restore", []v1beta1.Rule{{Snapshots: []string{"deadbeef"}}}); err != nil {
				t.Fatal(err)
			}
			rs := waitRestore(t, ns, "restore", 3*time.Minute)
			if rs.Status.Phase != v1beta1.RestoreFailed && rs.Status.Phase != v1beta1.RestoreInvalid {
				t.Fatalf("restore of a missing snapshot ended %s: %s", rs.Status.Phase, rs.Status.Reason)
			}
			if !strings.Contains(rs.Status.Reason+fmt.Sprint(rs.Status.Stats), "deadbeef") {
				t.Errorf("restore failure does not name the snapshot: %s %+v", rs.Status.Reason, rs.Status.Stats)
			}
			ev := waitEvent(t, ns, v1beta1.KindRestoreSession, "restore", corev1.EventTypeWarning, "")
			t.Logf("restore: %s: %s; event %s", rs.Status.Phase, rs.Status.Reason, ev)
			if after := runFixture(t, ns, "data", "manifest", "/data"); after != before {
				t.Errorf("a failed restore changed the PVC")
			}
			if n := snapshotCount(t, ns, 1); n != 1 {
				t.Errorf("repository has %d snapshots; want 1", n)
			}
			return []string{pw}
		}},
		{"restore-dotdot", func(t *testing.T, ns string) []string {
			pw := backedUp(t, ns)
			err := startRestore(t, ns, "restore", []v1beta1.Rule{{Paths: []string{"/stow-data/../etc"}}})
			if err != nil {
				if !strings.Contains(err.Error(), "..") {
					t.Errorf("rejection does not say why: %v", err)
				}
				t.Logf("rejected by the API server: %v", err)
				return []string{pw}
			}
			rs := waitRestore(t, ns, "restore", 2*time.Minute)
			if rs.Status.Phase != v1beta1.RestoreInvalid {
				t.Fatalf("restore with a '..' rule ended %s: %s; want Invalid", rs.Status.Phase, rs.Status.Reason)
			}
			waitEvent(t, ns, v1beta1.KindRestoreSession, "restore", corev1.EventTypeWarning, "InvalidRestoreSession")
			if n := snapshotCount(t, ns, 1); n != 1 {
				t.Errorf("repository has %d snapshots; want 1", n)
			}
			return []string{pw}
		}},
		{"unreadable-files", func(t *testing.T, ns string) []string {
			pvc(t, ns, "data", corev1.ReadWriteMany)
			runFixture(t, ns, "data", "write", "/data", "9", "6")
			runFixture(t, ns, "data", "unreadable", "/data")
			pw := faultRepo(t, ns, "local", nil)
			createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 3))
			waitBCReady(t, ns, "bc")
			failed(t, ns, triggerBackup(t, ns, "bc", 3*time.Minute), "root-only.bin")
			return []string{pw}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eShared(t)
			ns := namespace(t)
			secrets := tc.run(t, ns)
			assertNoSecretInLogs(t, ns, secrets...)
		})
	}
}

// jobLocation is the backend location a Job was admitted on.
func jobLocation(t *testing.T, ns, job string) string {
	t.Helper()
	j, err := e.kube.BatchV1().Jobs(ns).Get(context.Background(), job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j.Annotations[v1beta1.AnnotationLocation]
}

func setPassword(t *testing.T, ns, pw string) {
	t.Helper()
	c := context.Background()
	s, err := e.kube.CoreV1().Secrets(ns).Get(c, "repo-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data["RESTIC_PASSWORD"] = []byte(pw)
	if _, err := e.kube.CoreV1().Secrets(ns).Update(c, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// holdPVC runs a pod that keeps claim mounted (an app using it) and returns its name.
func holdPVC(t *testing.T, ns, claim string) string {
	t.Helper()
	c := context.Background()
	name := "app-" + rand.String(5)
	pod := fixturePod(ns, name, claim, "hold", "/data", "600")
	if _, err := e.kube.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "app pod "+name+" running", 2*time.Minute, func(c context.Context) (bool, error) {
		p, err := e.kube.CoreV1().Pods(ns).Get(c, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	return name
}
