package executor

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

const loc = "s3:minio:9000/bucket/team"

type gateFixture struct {
	gate  *Gate
	jobs  cache.Indexer
	pods  cache.Indexer
	clock *clocktesting.FakeClock
}

func newGateFixture(maxJobs int) *gateFixture {
	jobs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	return &gateFixture{gate: NewGate(batchlisters.NewJobLister(jobs), corelisters.NewPodLister(pods), clk, maxJobs), jobs: jobs, pods: pods, clock: clk}
}

func (f *gateFixture) req(job string, mode Mode) Request {
	return Request{Location: loc, Job: "ns/" + job, Mode: mode, Since: f.clock.Now()}
}

// job puts a Stow Job on loc into the lister, finished or not.
func (f *gateFixture) job(name string, mode Mode, finished bool, annotations ...string) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels:      map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{v1beta1.AnnotationLocation: loc, v1beta1.AnnotationLockMode: string(mode)}}}
	for i := 0; i+1 < len(annotations); i += 2 {
		j.Annotations[annotations[i]] = annotations[i+1]
	}
	if finished {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	}
	if err := f.jobs.Update(j); err != nil {
		panic(err)
	}
}

func (f *gateFixture) pod(job, container string, started bool) {
	st := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
	if started {
		st = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: job + "-x", Labels: map[string]string{batchv1.JobNameLabel: job}},
		Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{{Name: container, State: st}}}}
	if err := f.pods.Update(p); err != nil {
		panic(err)
	}
}

func mustAcquire(t *testing.T, g *Gate, r Request) {
	t.Helper()
	if refusal := g.Acquire(r); refusal != nil {
		t.Fatalf("Acquire(%s %s) refused: %+v", r.Job, r.Mode, refusal)
	}
}

func mustWait(t *testing.T, g *Gate, r Request, reason, holder string) {
	t.Helper()
	refusal := g.Acquire(r)
	if refusal == nil || refusal.Reason != reason || !strings.Contains(refusal.Message, holder) {
		t.Fatalf("Acquire(%s %s) = %+v; want %s naming %s", r.Job, r.Mode, refusal, reason, holder)
	}
}

// Backups and restores of different targets run side by side on one
// location; exclusive work waits for all of them, and they for it.
func TestGateSharedAndExclusive(t *testing.T) {
	f := newGateFixture(0)
	mustAcquire(t, f.gate, f.req("backup-a", Shared))
	mustAcquire(t, f.gate, f.req("restore-b", Shared)) // expectations only: not yet in the informer
	f.job("backup-a", Shared, false)
	mustWait(t, f.gate, f.req("prune", Exclusive), v1beta1.RepositoryInUse, "ns/backup-a")
	other := f.req("backup-other", Shared)
	other.Location = "s3:minio:9000/bucket/other"
	mustAcquire(t, f.gate, other)
	f.job("backup-a", Shared, true)
	f.gate.Release("ns/restore-b")
	mustAcquire(t, f.gate, f.req("prune", Exclusive))
	mustWait(t, f.gate, f.req("backup-c", Shared), v1beta1.RepositoryInUse, "ns/prune")
	mustWait(t, f.gate, f.req("check", Exclusive), v1beta1.RepositoryInUse, "ns/prune")
}

// Exclusive work that waits is not starved by new shared work: it blocks
// new shared Jobs until it has started, and stops blocking once its
// session stops asking.
func TestGateExclusiveWaiterGoesFirst(t *testing.T) {
	f := newGateFixture(0)
	mustAcquire(t, f.gate, f.req("backup-a", Shared))
	f.job("backup-a", Shared, false)
	woken := 0
	prune := f.req("prune", Exclusive)
	prune.Wake = func() { woken++ }
	mustWait(t, f.gate, prune, v1beta1.RepositoryInUse, "ns/backup-a")
	mustWait(t, f.gate, f.req("backup-b", Shared), v1beta1.RepositoryInUse, "ns/prune")
	f.gate.Release("ns/backup-a")
	if woken != 1 {
		t.Fatalf("the waiting exclusive request was woken %d times", woken)
	}
	mustWait(t, f.gate, f.req("backup-b", Shared), v1beta1.RepositoryInUse, "ns/prune")
	mustAcquire(t, f.gate, prune)
	f.job("prune", Exclusive, true)
	f.gate.Release("ns/prune")
	mustAcquire(t, f.gate, f.req("backup-b", Shared))

	// A waiter that stopped asking (its session was deleted) blocks no one.
	g := newGateFixture(0)
	mustAcquire(t, g.gate, g.req("backup-a", Shared))
	mustWait(t, g.gate, g.req("gone", Exclusive), v1beta1.RepositoryInUse, "ns/backup-a")
	g.clock.Step(waiterTTL + time.Second)
	mustAcquire(t, g.gate, g.req("backup-b", Shared))
}

// A backup that has reached its retention step needs the location alone:
// no new shared Job starts there until it ends.
func TestGateSharedJobReachingItsExclusivePart(t *testing.T) {
	f := newGateFixture(0)
	mustAcquire(t, f.gate, f.req("backup-a", Shared))
	f.job("backup-a", Shared, false, v1beta1.AnnotationExclusiveFrom, "update-status-1")
	f.pod("backup-a", "update-status-1", false)
	mustAcquire(t, f.gate, f.req("backup-b", Shared))
	f.job("backup-b", Shared, false)
	f.pod("backup-a", "update-status-1", true)
	mustWait(t, f.gate, f.req("backup-c", Shared), v1beta1.RepositoryInUse, "ns/backup-a")
	f.job("backup-a", Shared, true)
	mustAcquire(t, f.gate, f.req("backup-c", Shared))
}

func TestGateEndedJobMadeAgainHoldsLocation(t *testing.T) {
	f := newGateFixture(0)
	mustAcquire(t, f.gate, f.req("a", Exclusive))
	f.job("a", Exclusive, false)
	f.gate.Release("ns/a")
	mustAcquire(t, f.gate, f.req("a", Exclusive))
	mustWait(t, f.gate, f.req("b", Shared), v1beta1.RepositoryInUse, "ns/a")
}

func TestGateForgetsEndedJobs(t *testing.T) {
	f := newGateFixture(0)
	mustAcquire(t, f.gate, f.req("a", Shared))
	f.job("a", Shared, false)
	f.gate.Release("ns/a")
	f.gate.Release("ns/never-created")
	f.job("a", Shared, true)
	f.clock.Step(expectationTTL + time.Second)
	mustAcquire(t, f.gate, f.req("x", Shared))
	if n := len(f.gate.ended); n != 0 {
		t.Errorf("%d ended Jobs remembered after the lister caught up and the TTL passed", n)
	}
}

// A Job created by an older operator, without a location, holds its
// Repository object exclusively.
func TestJobLockOfOldJobs(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1beta1.AnnotationRepository: "ns/repo"}}}
	if l, m := JobLock(j); l != "repository:ns/repo" || m != Exclusive {
		t.Errorf("JobLock = %q, %q", l, m)
	}
}

// No more than the limit of Jobs run at once; the oldest waiting session
// gets the next slot.
func TestGateJobLimit(t *testing.T) {
	f := newGateFixture(2)
	req := func(job, location string, age time.Duration) Request {
		return Request{Location: location, Job: "ns/" + job, Mode: Shared, Since: f.clock.Now().Add(-age)}
	}
	mustAcquire(t, f.gate, req("a", "l1", 0))
	mustAcquire(t, f.gate, req("b", "l2", 0))
	mustWait(t, f.gate, req("young", "l3", time.Minute), v1beta1.TooManyJobs, "at most 2")
	mustWait(t, f.gate, req("old", "l4", time.Hour), v1beta1.TooManyJobs, "at most 2")
	f.gate.Release("ns/a")
	mustWait(t, f.gate, req("young", "l3", time.Minute), v1beta1.TooManyJobs, "1 older sessions wait")
	mustAcquire(t, f.gate, req("old", "l4", time.Hour))
	f.gate.Release("ns/b")
	mustAcquire(t, f.gate, req("young", "l3", time.Minute))
}
