//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// received is one request the fixture's http-receiver logged.
type received struct{ Method, Path, Body string }

// startReceiver runs the fixture's HTTP receiver as pod and Service
// "receiver" (port 8080) in ns and waits until it runs.
func startReceiver(t *testing.T, ns string) {
	t.Helper()
	c := context.Background()
	uid := int64(65534)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "receiver", Namespace: ns, Labels: map[string]string{"app": "receiver"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: boolPtr(false),
			SecurityContext:              &corev1.PodSecurityContext{RunAsUser: &uid, RunAsNonRoot: boolPtr(true)},
			Containers: []corev1.Container{{Name: "receiver", Image: e.fixtureImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"/usr/local/bin/fixture", "http-receiver", "8080"}, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}}},
		},
	}
	if _, err := e.kube.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "receiver", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "receiver"}, Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := e.kube.CoreV1().Services(ns).Create(c, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "receiver ready", 2*time.Minute, func(c context.Context) (bool, error) {
		p, err := e.kube.CoreV1().Pods(ns).Get(c, "receiver", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				return true, nil
			}
		}
		return false, nil
	})
}

// receivedRequests reads what the receiver got so far.
func receivedRequests(t *testing.T, ns string) []received {
	t.Helper()
	b, err := e.kube.CoreV1().Pods(ns).GetLogs("receiver", &corev1.PodLogOptions{}).Do(context.Background()).Raw()
	if err != nil {
		t.Fatalf("receiver log: %v", err)
	}
	var out []received
	for _, l := range strings.Split(string(b), "\n") {
		var r received
		if json.Unmarshal([]byte(l), &r) == nil && r.Path != "" {
			out = append(out, r)
		}
	}
	return out
}

func requestTo(rs []received, path string) *received {
	for i := range rs {
		if rs[i].Path == path {
			return &rs[i]
		}
	}
	return nil
}

func post(path, body string, policy v1beta1.HookExecutionPolicy) *v1beta1.PostHookHandler {
	return &v1beta1.PostHookHandler{Handler: v1beta1.Handler{HTTPPost: httpPost(path, body)}, ExecutionPolicy: policy}
}

func httpPost(path, body string) *v1beta1.HTTPPostAction {
	return &v1beta1.HTTPPostAction{HTTPGetAction: v1beta1.HTTPGetAction{Host: "receiver", Port: intstr.FromInt32(8080), Path: path,
		HTTPHeaders: []corev1.HTTPHeader{{Name: "Content-Type", Value: "application/json"}}}, Body: body}
}

// slackBody is the body of Stash's Slack notification guide.
const slackBody = `{{- $msg := dict  "type" "mrkdwn" "text" (printf ":x: Backup failed for %s/%s Reason: %s." .Namespace .Target.Name .Status.Error) -}}
{
  "blocks": [
      {
        "type": "section",
        "text": {{ toJson $msg }}
      }
    ]
}
`

// slackText is the message a rendered Slack body carries.
func slackText(t *testing.T, body string) string {
	t.Helper()
	var m struct {
		Blocks []struct {
			Text struct{ Text string } `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil || len(m.Blocks) != 1 {
		t.Fatalf("the hook's body is not the Slack message: %v\n%s", err, body)
	}
	return m.Blocks[0].Text.Text
}

func targetCond(s *v1beta1.BackupSession, typ string) *v1beta1.Condition {
	if len(s.Status.Targets) == 0 {
		return nil
	}
	return v1beta1.GetCondition(s.Status.Targets[0].Conditions, typ)
}

// TestHooksHTTP runs Stash's HTTP hook guides against an in-cluster
// receiver: rendered pre and post messages arrive, an OnFailure hook fires
// on a failing backup (with the Slack guide's message) and not on a
// succeeding one, and a failing pre hook prevents the backup.
func TestHooksHTTP(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	startReceiver(t, ns)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "7", "10")
	pvc(t, ns, "bad", corev1.ReadWriteMany)
	runFixture(t, ns, "bad", "write", "/data", "8", "5")
	runFixture(t, ns, "bad", "unreadable", "/data") // a non-root backup of it fails
	createRepository(t, ns, "s3")

	const never = "0 0 1 1 *"
	good := backupConfig(ns, "good", "data", never, 5)
	good.Spec.Hooks = &v1beta1.BackupHooks{
		PreBackup: &v1beta1.Handler{HTTPPost: httpPost("/pre", `{"session":"{{ .Name }}","phase":"{{ .Status.Phase }}","invoker":"{{ .Invoker.Kind }}/{{ .Invoker.Name }}"}`)},
		PostBackup: post("/post", `{{- $msg := dict "type" "mrkdwn" "text" (printf "Backup %s for %s/%s" .Status.Phase .Namespace .Target.Name) -}}
{"blocks": [{"type": "section", "text": {{ toJson $msg }}}]}`, v1beta1.ExecuteAlways),
	}
	alertOK := backupConfig(ns, "alert-ok", "data", never, 5)
	alertOK.Spec.Hooks = &v1beta1.BackupHooks{PostBackup: post("/alert-ok", slackBody, v1beta1.ExecuteOnFailure)}
	alertBad := backupConfig(ns, "alert-bad", "bad", never, 5)
	alertBad.Spec.Hooks = &v1beta1.BackupHooks{PostBackup: post("/alert-bad", slackBody, v1beta1.ExecuteOnFailure)}
	preFails := backupConfig(ns, "pre-fails", "bad", never, 5)
	preFails.Spec.Hooks = &v1beta1.BackupHooks{
		PreBackup:  &v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: "receiver", Port: intstr.FromInt32(8080), Path: "/fail-pre"}},
		PostBackup: post("/after-failed-pre", "{}", v1beta1.ExecuteAlways),
	}
	for _, bc := range []*v1beta1.BackupConfiguration{good, alertOK, alertBad, preFails} {
		createBC(t, bc)
		waitBCReady(t, ns, bc.Name)
	}

	// good and alert-bad (different PVCs) run at once; alert-ok after good
	// (same PVC), pre-fails after alert-bad.
	sGood, sBad := startSession(t, ns, "good"), startSession(t, ns, "alert-bad")
	gotGood := waitSessionFinal(t, ns, sGood, 5*time.Minute)
	gotBad := waitSessionFinal(t, ns, sBad, 5*time.Minute)
	sOK, sPre := startSession(t, ns, "alert-ok"), startSession(t, ns, "pre-fails")
	gotOK := waitSessionFinal(t, ns, sOK, 5*time.Minute)
	gotPre := waitSessionFinal(t, ns, sPre, 5*time.Minute)
	reqs := receivedRequests(t, ns)
	t.Logf("receiver got %+v", reqs)

	t.Run("pre and post messages arrive rendered", func(t *testing.T) {
		if gotGood.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("session %s ended %s: %s", sGood, gotGood.Status.Phase, gotGood.Status.Reason)
		}
		for _, typ := range []string{v1beta1.PreBackupHookExecutionSucceeded, v1beta1.PostBackupHookExecutionSucceeded} {
			if cd := targetCond(gotGood, typ); cd == nil || cd.Status != v1beta1.ConditionTrue || !strings.HasPrefix(cd.Reason, "SuccessfullyExecuted") {
				t.Errorf("%s = %+v", typ, cd)
			}
		}
		pre := requestTo(reqs, "/pre")
		want := fmt.Sprintf(`{"session":"%s","phase":"Running","invoker":"BackupConfiguration/good"}`, sGood)
		if pre == nil || pre.Method != "POST" || pre.Body != want {
			t.Errorf("pre hook request %+v, want body %s", pre, want)
		}
		p := requestTo(reqs, "/post")
		if p == nil {
			t.Fatal("the post hook sent nothing")
		}
		if got, want := slackText(t, p.Body), fmt.Sprintf("Backup Succeeded for %s/data", ns); got != want {
			t.Errorf("post hook message %q, want %q", got, want)
		}
	})
	t.Run("OnFailure fires on a failing backup only", func(t *testing.T) {
		if gotOK.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("session %s ended %s: %s", sOK, gotOK.Status.Phase, gotOK.Status.Reason)
		}
		if cd := targetCond(gotOK, v1beta1.PostBackupHookExecutionSucceeded); cd == nil || cd.Status != v1beta1.ConditionTrue || !strings.Contains(cd.Message, "OnFailure") {
			t.Errorf("skipped OnFailure hook: condition %+v", cd)
		}
		if r := requestTo(reqs, "/alert-ok"); r != nil {
			t.Errorf("OnFailure hook fired after a successful backup: %+v", r)
		}
		if gotBad.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("session %s of the unreadable PVC ended %s, want Failed", sBad, gotBad.Status.Phase)
		}
		r := requestTo(reqs, "/alert-bad")
		if r == nil {
			t.Fatalf("OnFailure hook did not fire after a failed backup; conditions %+v", gotBad.Status.Targets)
		}
		text := slackText(t, r.Body)
		if prefix := fmt.Sprintf(":x: Backup failed for %s/bad Reason: ", ns); !strings.HasPrefix(text, prefix) || len(text) <= len(prefix)+1 {
			t.Errorf("Slack message %q, want it to start with %q and give the reason", text, prefix)
		}
	})
	t.Run("a failing pre hook prevents the backup", func(t *testing.T) {
		if gotPre.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("session %s ended %s, want Failed", sPre, gotPre.Status.Phase)
		}
		cd := targetCond(gotPre, v1beta1.PreBackupHookExecutionSucceeded)
		if cd == nil || cd.Status != v1beta1.ConditionFalse || cd.Reason != v1beta1.FailedToExecutePreBackupHook || !strings.Contains(cd.Message, "500") {
			t.Errorf("PreBackupHookExecutionSucceeded = %+v", cd)
		}
		if !strings.Contains(gotPre.Status.Reason, "preBackup hook failed") {
			t.Errorf("session reason %q does not name the hook", gotPre.Status.Reason)
		}
		if _, err := e.kube.BatchV1().Jobs(ns).Get(c, names.BackupJob(sPre), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a backup Job exists after the pre hook failed (err %v)", err)
		}
		if len(gotPre.Status.Targets[0].Stats) != 0 {
			t.Errorf("a failed pre hook took a snapshot: %+v", gotPre.Status.Targets[0].Stats)
		}
		if r := requestTo(reqs, "/after-failed-pre"); r != nil {
			t.Errorf("the post hook ran after a failed pre hook")
		}
		if ev := waitEvent(t, ns, v1beta1.KindBackupSession, sPre, corev1.EventTypeWarning, "HookFailed"); !strings.Contains(ev, "preBackup") {
			t.Errorf("HookFailed event %q does not name the hook", ev)
		}
	})
}

// TestHooksExecInApplicationPod: an exec hook runs in the application pod
// that uses the PVC (it consents by annotation); what the pre hook writes is
// in the snapshot. A pod using the PVC without consent fails the hook,
// naming the pod.
func TestHooksExecInApplicationPod(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "9", "5")
	createRepository(t, ns, "s3")
	startApp := func(name string, consent bool) {
		pod := fixturePod(ns, name, "data", "hold", "/data", "1800")
		pod.Labels = map[string]string{"app": name}
		if consent {
			pod.Annotations = map[string]string{v1beta1.AnnotationExecHooks: "app-backup"}
		}
		if _, err := e.kube.CoreV1().Pods(ns).Create(c, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "pod "+name+" running", 2*time.Minute, func(c context.Context) (bool, error) {
			p, err := e.kube.CoreV1().Pods(ns).Get(c, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
	}
	startApp("app", true)
	startApp("intruder", false)

	mark := func(file string) *v1beta1.Handler {
		return &v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"/usr/local/bin/fixture", "mark", "/data/" + file, "{{ .Name }}"}}}
	}
	bc := backupConfig(ns, "app-backup", "data", "0 0 1 1 *", 5)
	bc.Spec.Hooks = &v1beta1.BackupHooks{PreBackup: mark("pre-hook.txt"), PostBackup: &v1beta1.PostHookHandler{Handler: *mark("post-hook.txt")}}
	createBC(t, bc)
	waitBCReady(t, ns, "app-backup")

	refused := triggerBackup(t, ns, "app-backup", 4*time.Minute)
	cd := targetCond(refused, v1beta1.PreBackupHookExecutionSucceeded)
	if refused.Status.Phase != v1beta1.BackupSessionFailed || cd == nil || cd.Status != v1beta1.ConditionFalse ||
		!strings.Contains(cd.Message, "pod intruder") || !strings.Contains(cd.Message, v1beta1.AnnotationExecHooks) {
		t.Fatalf("with a pod that does not consent: phase %s, condition %+v", refused.Status.Phase, cd)
	}
	if err := e.kube.CoreV1().Pods(ns).Delete(c, "intruder", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod intruder gone", 2*time.Minute, func(c context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Pods(ns).Get(c, "intruder", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	s := triggerBackup(t, ns, "app-backup", 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session %s ended %s: %s", s.Name, s.Status.Phase, s.Status.Reason)
	}
	if cd := targetCond(s, v1beta1.PreBackupHookExecutionSucceeded); cd == nil || !strings.Contains(cd.Message, "pod app") {
		t.Errorf("pre hook condition %+v does not name the pod it ran in", cd)
	}
	if got := runFixture(t, ns, "data", "cat", "/data/pre-hook.txt"); got != s.Name {
		t.Fatalf("pre hook wrote %q, want the session name %q", got, s.Name)
	}
	if got := runFixture(t, ns, "data", "cat", "/data/post-hook.txt"); got != s.Name {
		t.Fatalf("post hook wrote %q, want the session name %q", got, s.Name)
	}
	// The snapshot holds what the pre hook wrote: change it, restore, read it back.
	runFixture(t, ns, "data", "mark", "/data/pre-hook.txt", "changed after the backup")
	manifest := `{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"restore"},
		"spec":{"repository":{"name":"repo"},"target":{"ref":{"apiVersion":"v1","kind":"PersistentVolumeClaim","name":"data"}}}}`
	if err := e.stow.StowV1beta1().RESTClient().Post().Namespace(ns).Resource("restoresessions").
		Body([]byte(manifest)).SetHeader("Content-Type", "application/json").Do(c).Error(); err != nil {
		t.Fatal(err)
	}
	if got := waitRestore(t, ns, "restore", 4*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore ended %s: %s", got.Status.Phase, got.Status.Reason)
	}
	if got := runFixture(t, ns, "data", "cat", "/data/pre-hook.txt"); got != s.Name {
		t.Fatalf("restored pre-hook.txt holds %q, want %q: the pre hook's write is not in the snapshot", got, s.Name)
	}
}
