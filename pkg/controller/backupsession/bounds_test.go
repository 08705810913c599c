package backupsession

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// sessionsOf lists the BackupSessions the fake API server holds.
func (f *fixture) sessionsOf() []v1beta1.BackupSession {
	f.t.Helper()
	list, err := f.stow.StowV1beta1().BackupSessions(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

// A hand-written retryLeft gets no retry the configuration does not allow
// (issue 13: retryLeft 1000000 without retryConfig made 26 Jobs in 3 minutes).
func TestRetryLeftWithoutRetryConfigRetriesNothing(t *testing.T) {
	failed := newSession("bc-1", "bc", t0.Add(-time.Hour), v1beta1.BackupSessionFailed)
	failed.Spec.RetryLeft = 1000000
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), failed)
	for i := 0; i < 3; i++ {
		f.sync("bc-1")
		f.clock.Step(time.Hour)
	}
	if s := f.session("bc-1"); s.Status.NextRetry != nil || s.Status.Retried != nil {
		t.Errorf("nextRetry %v retried %v: want no retry", s.Status.NextRetry, s.Status.Retried)
	}
	if n := len(f.sessionsOf()); n != 1 {
		t.Errorf("%d sessions, want 1 (no retry)", n)
	}
}

// maxRetry bounds the whole chain and delay 0s still waits MinRetryDelay
// (issue 13: maxRetry 2147483647 with delay 0s made 24 Jobs in 3 minutes).
func TestRetryChainBoundedByMaxRetryWithDelayFloor(t *testing.T) {
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) {
		bc.Spec.RetryConfig = &v1beta1.RetryConfig{MaxRetry: 2, Delay: v1beta1.Duration{}}
	})
	failed := newSession("bc-1", "bc", t0.Add(-time.Hour), v1beta1.BackupSessionFailed)
	failed.Spec.RetryLeft = 1000000
	f := newFixture(t, bc, repository("repo"), failed)

	current := "bc-1"
	var chain []string
	for hop := 0; hop < 5; hop++ {
		before := len(f.sessionsOf())
		f.sync(current)
		s := f.session(current)
		if s.Status.NextRetry == nil {
			break // no retry left
		}
		if got := s.Status.NextRetry.Sub(f.clock.Now()); got != v1beta1.MinRetryDelay {
			t.Fatalf("%s: retry in %v, want the floor %v", current, got, v1beta1.MinRetryDelay)
		}
		if f.requeued[ns+"/"+current] != v1beta1.MinRetryDelay {
			t.Fatalf("%s: requeued after %v", current, f.requeued[ns+"/"+current])
		}
		if len(f.sessionsOf()) != before {
			t.Fatalf("%s: retry created before the delay", current)
		}
		f.clock.Step(v1beta1.MinRetryDelay)
		f.sync(current)
		var next *v1beta1.BackupSession
		for i, o := range f.sessionsOf() {
			if o.Annotations[v1beta1.AnnotationRetryOf] == current {
				next = &f.sessionsOf()[i]
			}
		}
		if next == nil {
			t.Fatalf("%s: no retry session created", current)
		}
		if want := int32(1 - len(chain)); next.Spec.RetryLeft != want {
			t.Fatalf("retry %s has retryLeft %d, want %d (bounded by maxRetry 2)", next.Name, next.Spec.RetryLeft, want)
		}
		chain = append(chain, next.Name)
		// The retry fails too.
		next.Status.Phase = v1beta1.BackupSessionFailed
		next.CreationTimestamp = metav1.NewTime(f.clock.Now())
		if _, err := f.stow.StowV1beta1().BackupSessions(ns).UpdateStatus(context.Background(), next, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.resync()
		current = next.Name
		f.clock.Step(time.Second) // retry names carry the creation second
	}
	if len(chain) != 2 {
		t.Fatalf("retry chain %v: want exactly maxRetry=2 retries", chain)
	}
	if n := len(f.sessionsOf()); n != 3 {
		t.Fatalf("%d sessions, want the original and 2 retries", n)
	}
}

// Over --max-concurrent-jobs a session waits visibly: Pending with
// ExecutorWaiting=True, reason TooManyJobs, no Job, and it is asked again.
func TestTooManyJobsShownAsWaiting(t *testing.T) {
	f := newFixtureMaxJobs(t, 1, readyBC("a", "data-a"), readyBC("b", "data-b"), repository("repo"),
		newSession("a-1", "a", t0, ""), newSession("b-1", "b", t0.Add(time.Second), ""))
	f.sync("a-1")
	if s := f.session("a-1"); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("a-1 phase = %s, want Running", s.Status.Phase)
	}
	f.sync("b-1")
	s := f.session("b-1")
	if s.Status.Phase != v1beta1.BackupSessionPending {
		t.Fatalf("b-1 phase = %s, want Pending", s.Status.Phase)
	}
	c := cond(t, s.Status.Conditions, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue)
	if c.Reason != v1beta1.TooManyJobs {
		t.Fatalf("waiting reason = %s, want %s", c.Reason, v1beta1.TooManyJobs)
	}
	contains(t, "waiting message", c.Message, "at most 1")
	if f.job(names.BackupJob("b-1")) != nil || f.built != 1 {
		t.Fatalf("a Job was built for the waiting session (built %d)", f.built)
	}
	if f.requeued[ns+"/b-1"] == 0 {
		t.Fatal("the waiting session is not asked again")
	}
}

// A session keeps the deadline it started with when its configuration's
// timeOut is changed or removed; its expiry names that timeOut. Reading the
// configuration's timeOut instead was a nil dereference once it was removed:
// the operator panicked on that session, after every restart.
func TestTimeOutRemovedWhileSessionRuns(t *testing.T) {
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.TimeOut = &v1beta1.Duration{Duration: time.Hour} })
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodRunning, t0, nil)
	cur, err := f.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), "bc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.TimeOut = nil
	if _, err := f.stow.StowV1beta1().BackupConfigurations(ns).Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.resync()
	f.clock.Step(61 * time.Minute)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("sync panicked after spec.timeOut was removed: %v", r)
			}
		}()
		f.sync("bc-1")
	}()
	s := f.session("bc-1")
	c := cond(t, s.Status.Conditions, v1beta1.DeadlineExceeded, v1beta1.ConditionTrue)
	if s.Status.Phase != v1beta1.BackupSessionFailed || !strings.Contains(c.Message, "timeOut 1h0m0s") {
		t.Fatalf("phase %s, DeadlineExceeded %q: want Failed, naming the timeOut the session started with", s.Status.Phase, c.Message)
	}
}
