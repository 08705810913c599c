package repository

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/jobresult"
)

// wipeRepo is Repository demo/repo with wipeOut at s3 bucket b, prefix
// team/a, being deleted.
func wipeRepo() *v1beta1.Repository {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Spec.WipeOut = true
	r.Spec.Backend.S3.Prefix = "team/a"
	r.Finalizers = []string{v1beta1.Finalizer}
	now := metav1.Now()
	r.DeletionTimestamp = &now
	return r
}

// newWipeFixture is newMaintFixture whose Jobs get a creation time (the
// fake API server sets none; the watchdog needs one).
func newWipeFixture(t *testing.T, objs ...runtime.Object) *maintFixture {
	f := newMaintFixture(t, objs...)
	f.kube.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if j, ok := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job); ok && j.CreationTimestamp.IsZero() {
			j.CreationTimestamp = metav1.NewTime(f.now)
		}
		return false, nil, nil
	})
	return f
}

func (f *maintFixture) wipeCondition() *v1beta1.Condition {
	return v1beta1.GetCondition(f.repo("demo", "repo").Status.Conditions, v1beta1.WipeOut)
}

func (f *maintFixture) jobs() []batchv1.Job {
	l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	return l.Items
}

// Deleting a Repository with wipeOut: a Job deletes its data (stow wipe, at
// its own prefix, needing the location alone); the finalizer stays until the
// Job reported success, then goes, with an Event saying what was deleted.
func TestWipeOutJobThenFinalizer(t *testing.T) {
	f := newWipeFixture(t, wipeRepo())
	groups := &groupRecorder{}
	f.c.WithMetrics(groups)
	f.syncRepo()
	job := f.onlyJob()
	if job.Name != "stow-wipe-repo" || job.Annotations[v1beta1.AnnotationLockMode] != string(executor.Exclusive) ||
		job.Annotations[v1beta1.AnnotationLocation] != "s3:127.0.0.1:9000/b/team/a" || metav1.GetControllerOf(job).UID != "repo-uid" {
		t.Fatalf("wipe Job %s: annotations %v, owner %+v", job.Name, job.Annotations, metav1.GetControllerOf(job))
	}
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.HasPrefix(args, "wipe ") || !strings.Contains(args, "--path=team/a") || !strings.Contains(args, "--bucket=b") {
		t.Fatalf("wipe Job args %q", args)
	}
	if got := f.repo("demo", "repo"); len(got.Finalizers) != 1 || len(groups.groups) != 0 {
		t.Fatalf("finalizer removed (%v) or metrics deleted (%v) while the wipe runs", got.Finalizers, groups.groups)
	}
	if c := f.wipeCondition(); c == nil || c.Status != v1beta1.ConditionUnknown || c.Reason != ReasonWipeOutRunning {
		t.Fatalf("WipeOut = %+v", c)
	}
	// Synced again while it runs: the same Job, nothing removed.
	f.syncRepo()
	f.onlyJob()
	if len(f.repo("demo", "repo").Finalizers) != 1 {
		t.Fatal("finalizer removed while the wipe runs")
	}

	f.finishPod(job, jobresult.Result{Step: "wipe", Wipe: &jobresult.WipeResult{Files: 9, Bytes: 2048}}, 0)
	f.syncRepo()
	if got := f.repo("demo", "repo"); len(got.Finalizers) != 0 {
		t.Fatalf("finalizers after the wipe = %v", got.Finalizers)
	}
	if len(groups.groups) != 1 {
		t.Errorf("metrics groups deleted: %v", groups.groups)
	}
	ev := f.events()
	if !strings.Contains(ev, "Normal "+EventWipeOutStarted) || !strings.Contains(ev, "Normal "+EventWipedOut) || !strings.Contains(ev, "9 files") {
		t.Errorf("events = %q", ev)
	}
}

// A failed wipe keeps the finalizer and the data's whereabouts, says why
// and what to do; deleting the failed Job tries again.
func TestWipeOutFailedKeepsFinalizer(t *testing.T) {
	f := newWipeFixture(t, wipeRepo())
	f.syncRepo()
	job := f.onlyJob()
	f.finishPod(job, jobresult.Result{Step: "wipe", Error: "the repository is in use (lock held by someone@laptop): not wiped"}, 1)
	f.syncRepo()
	if got := f.repo("demo", "repo"); len(got.Finalizers) != 1 {
		t.Fatalf("finalizer removed after a failed wipe: %v", got.Finalizers)
	}
	c := f.wipeCondition()
	if c == nil || c.Status != v1beta1.ConditionFalse || c.Reason != ReasonWipeOutFailed || !strings.Contains(c.Message, "lock held by someone@laptop") ||
		!strings.Contains(c.Message, "delete the Job to try again") || !strings.Contains(c.Message, "spec.wipeOut to false") {
		t.Fatalf("WipeOut = %+v", c)
	}
	if ev := f.events(); !strings.Contains(ev, "Warning "+EventWipeOutFailed) {
		t.Errorf("events = %q", ev)
	}
	// Still failed, no new Job, no new Event on the next sync.
	f.syncRepo()
	if n := len(f.jobs()); n != 1 {
		t.Fatalf("%d Jobs after a second sync of the failed wipe", n)
	}
	if ev := f.events(); ev != "" {
		t.Errorf("a second sync of the same failure made events %q", ev)
	}
	// The user deletes the failed Job: a new one starts.
	ctx := context.Background()
	_ = f.kube.BatchV1().Jobs("demo").Delete(ctx, job.Name, metav1.DeleteOptions{})
	_ = f.kube.CoreV1().Pods("demo").Delete(ctx, job.Name+"-x", metav1.DeleteOptions{})
	f.syncRepo()
	f.onlyJob()
	if c := f.wipeCondition(); c == nil || c.Reason != ReasonWipeOutRunning {
		t.Fatalf("WipeOut after deleting the failed Job = %+v", c)
	}

	// With wipeOut set to false the Repository goes, its data stays.
	r := f.repo("demo", "repo")
	r.Spec.WipeOut = false
	if _, err := f.stow.StowV1beta1().Repositories("demo").Update(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	if got := f.repo("demo", "repo"); len(got.Finalizers) != 0 {
		t.Fatalf("finalizers with wipeOut false = %v", got.Finalizers)
	}
}

// The wipe is refused, and no Job made, while anyone else may use the data:
// another Repository (any namespace) on an overlapping location, a
// BackupConfiguration or an unfinished RestoreSession of this Repository;
// and for a location that is a whole bucket. A sibling prefix, a
// Repository being deleted too and a finished restore do not count.
func TestWipeOutRefusals(t *testing.T) {
	other := func(ns, name, prefix string) *v1beta1.Repository {
		r := repository(ns)
		r.Name, r.UID = name, types.UID("uid-"+ns+"-"+name)
		r.Spec.Backend.S3.Prefix = prefix
		return r
	}
	deleting := other("ns3", "also-going", "team/a")
	now := metav1.Now()
	deleting.DeletionTimestamp, deleting.Finalizers = &now, []string{v1beta1.Finalizer}
	done := rs("demo", "done")
	done.Status.Phase = v1beta1.RestoreSucceeded
	running := rs("demo", "running")
	running.Status.Phase = v1beta1.RestoreRunning
	noPrefix := wipeRepo()
	noPrefix.Spec.Backend.S3.Prefix = "/"
	for _, tc := range []struct {
		name  string
		repo  *v1beta1.Repository
		other []runtime.Object
		want  string // "" = the wipe starts
	}{
		{"alone", wipeRepo(), nil, ""},
		{"siblings", wipeRepo(), []runtime.Object{other("ns2", "ab", "team/ab"), other("ns2", "a2", "team/a2"), other("ns2", "c", "team/a"+"c/a")}, ""},
		{"being deleted too, finished restore", wipeRepo(), []runtime.Object{deleting, done}, ""},
		{"same location", wipeRepo(), []runtime.Object{other("ns2", "twin", "/team/a/")}, "Repository ns2/twin"},
		{"inside", wipeRepo(), []runtime.Object{other("ns2", "inner", "team/a/x")}, "Repository ns2/inner"},
		{"around", wipeRepo(), []runtime.Object{other("ns2", "outer", "team")}, "Repository ns2/outer"},
		{"backup configuration", wipeRepo(), []runtime.Object{bc("apps", "nightly", "demo")}, "BackupConfiguration apps/nightly"},
		{"restore running", wipeRepo(), []runtime.Object{running}, "RestoreSession demo/running"},
		{"whole bucket", noPrefix, nil, "wiping a whole bucket is refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newWipeFixture(t, append([]runtime.Object{tc.repo}, tc.other...)...)
			f.syncRepo()
			c := f.wipeCondition()
			if tc.want == "" {
				if len(f.jobs()) != 1 || c == nil || c.Reason != ReasonWipeOutRunning {
					t.Fatalf("wipe not started: %d Jobs, WipeOut %+v", len(f.jobs()), c)
				}
				return
			}
			if n := len(f.jobs()); n != 0 {
				t.Fatalf("%d wipe Jobs despite the refusal", n)
			}
			if len(f.repo("demo", "repo").Finalizers) != 1 {
				t.Fatal("finalizer removed on a refused wipe")
			}
			if c == nil || c.Status != v1beta1.ConditionFalse || c.Reason != ReasonWipeOutRefused || !strings.Contains(c.Message, tc.want) ||
				!strings.Contains(c.Message, "spec.wipeOut to false") {
				t.Fatalf("WipeOut = %+v, want a refusal naming %q", c, tc.want)
			}
			if ev := f.events(); !strings.Contains(ev, "Warning "+EventWipeOutRefused) || !strings.Contains(ev, tc.want) {
				t.Errorf("events = %q", ev)
			}
		})
	}
}

// The wipe needs the location alone: it waits for a backup there.
func TestWipeOutWaitsForTheLocation(t *testing.T) {
	f := newWipeFixture(t, wipeRepo())
	backup := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-x", Namespace: "apps",
		Labels:      map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{v1beta1.AnnotationLocation: "s3:127.0.0.1:9000/b/team/a", v1beta1.AnnotationLockMode: string(executor.Shared)}}}
	if _, err := f.kube.BatchV1().Jobs("apps").Create(context.Background(), backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	if n := len(f.jobs()); n != 0 {
		t.Fatalf("wipe started while a backup uses the location (%d Jobs)", n)
	}
	c := f.wipeCondition()
	if c == nil || c.Reason != ReasonWipeOutWaiting || !strings.Contains(c.Message, "apps/stow-backup-x") || len(f.repo("demo", "repo").Finalizers) != 1 {
		t.Fatalf("WipeOut = %+v", c)
	}
}

// When the namespace is being deleted, its storage Secret and Jobs go too:
// the wipe is skipped (the finalizer goes) with a Warning naming the data
// left in place, rather than holding the namespace for ever.
func TestWipeOutSkippedInADeletedNamespace(t *testing.T) {
	f := newWipeFixture(t, wipeRepo())
	now := metav1.Now()
	if err := f.kube.Tracker().Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", DeletionTimestamp: &now, Finalizers: []string{"kubernetes"}}}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	if n := len(f.jobs()); n != 0 {
		t.Fatalf("%d wipe Jobs in a namespace being deleted", n)
	}
	if got := f.repo("demo", "repo"); len(got.Finalizers) != 0 {
		t.Fatalf("finalizers = %v", got.Finalizers)
	}
	if ev := f.events(); !strings.Contains(ev, "Warning "+EventWipeOutSkipped) || !strings.Contains(ev, "s3:127.0.0.1:9000/b/team/a") {
		t.Errorf("events = %q", ev)
	}
}

// A wipe Job whose pod never starts is stopped; the next one starts
// wipeRetry later, not at once (no Job churn), and the condition says so.
func TestWipeOutStoppedJobRetriesLater(t *testing.T) {
	f := newWipeFixture(t, wipeRepo())
	f.syncRepo()
	f.onlyJob()
	f.now = f.now.Add(6 * time.Minute) // past the pending timeout: no pod
	f.syncRepo()
	if n := len(f.jobs()); n != 0 {
		t.Fatalf("%d Jobs after the stop", n)
	}
	c := f.wipeCondition()
	if c == nil || c.Reason != ReasonWipeOutStopped || !strings.Contains(c.Message, "created no pod") || len(f.repo("demo", "repo").Finalizers) != 1 {
		t.Fatalf("WipeOut after the stop = %+v", c)
	}
	f.now = f.now.Add(time.Minute)
	f.syncRepo()
	if n := len(f.jobs()); n != 0 {
		t.Fatalf("a new wipe Job %d minute after the stop", n)
	}
	f.now = f.now.Add(wipeRetry)
	f.syncRepo()
	f.onlyJob()
	if c := f.wipeCondition(); c == nil || c.Reason != ReasonWipeOutRunning {
		t.Fatalf("WipeOut after the retry = %+v", c)
	}
}
