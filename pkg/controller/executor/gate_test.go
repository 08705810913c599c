package executor

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

const testRepo = "ns/repo"

type gateFixture struct {
	gate  *RepoGate
	jobs  cache.Indexer
	clock *clocktesting.FakeClock
}

func newGateFixture() *gateFixture {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	return &gateFixture{gate: NewRepoGate(batchlisters.NewJobLister(idx), clk), jobs: idx, clock: clk}
}

// job puts a Stow Job of testRepo into the lister, finished or not.
func (f *gateFixture) job(name string, finished bool) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		Labels:      map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{AnnotationRepository: testRepo}}}
	if finished {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	}
	if err := f.jobs.Update(j); err != nil {
		panic(err)
	}
}

func TestGateOneJobPerRepository(t *testing.T) {
	f := newGateFixture()
	if _, ok := f.gate.Acquire(testRepo, "ns/a", nil); !ok {
		t.Fatal("first Acquire refused")
	}
	// Created but not yet in the informer: the expectation holds the Repository.
	if h, ok := f.gate.Acquire(testRepo, "ns/b", nil); ok || h != "ns/a" {
		t.Fatalf("second Acquire = %q, %v; want refused, held by ns/a", h, ok)
	}
	f.job("a", false)
	if h, ok := f.gate.Acquire(testRepo, "ns/b", nil); ok || h != "ns/a" {
		t.Fatalf("Acquire while ns/a runs = %q, %v", h, ok)
	}
	if _, ok := f.gate.Acquire("ns/other", "ns/c", nil); !ok {
		t.Error("another Repository is not free")
	}
	f.job("a", true)
	if _, ok := f.gate.Acquire(testRepo, "ns/b", nil); !ok {
		t.Error("Acquire refused after ns/a finished")
	}
}

// A Job whose pod has ended frees the Repository at Release, before the Job
// controller marks it finished, and the sessions waiting are woken once.
func TestGateReleaseWakesWaitersBeforeJobIsFinished(t *testing.T) {
	f := newGateFixture()
	f.gate.Acquire(testRepo, "ns/a", nil)
	f.job("a", false)
	woken := map[string]int{}
	for _, k := range []string{"ns/b", "ns/c"} {
		if _, ok := f.gate.Acquire(testRepo, k, func() { woken[k]++ }); ok {
			t.Fatalf("%s acquired a busy Repository", k)
		}
	}
	f.gate.Acquire(testRepo, "ns/b", func() { woken["ns/b"]++ }) // asking again registers once
	f.gate.Release(testRepo, "ns/a")
	if woken["ns/b"] != 1 || woken["ns/c"] != 1 {
		t.Fatalf("woken = %v, want each waiter once", woken)
	}
	if _, ok := f.gate.Acquire(testRepo, "ns/b", nil); !ok {
		t.Fatal("Acquire refused after the holder was released (its Job not yet marked finished)")
	}
	if h, ok := f.gate.Acquire(testRepo, "ns/c", func() { woken["ns/c"]++ }); ok || h != "ns/b" {
		t.Fatalf("ns/c got a Repository ns/b holds: %q, %v", h, ok)
	}
	f.gate.Release(testRepo, "ns/a") // a late repeat wakes nobody new
	if woken["ns/c"] != 1 {
		t.Errorf("a stale Release woke ns/c: %v", woken)
	}
}

func TestGateEndedJobMadeAgainHoldsRepository(t *testing.T) {
	f := newGateFixture()
	f.gate.Acquire(testRepo, "ns/a", nil)
	f.job("a", false)
	f.gate.Release(testRepo, "ns/a")
	if _, ok := f.gate.Acquire(testRepo, "ns/a", nil); !ok {
		t.Fatal("the same Job key could not acquire again")
	}
	if h, ok := f.gate.Acquire(testRepo, "ns/b", nil); ok || h != "ns/a" {
		t.Fatalf("Acquire = %q, %v; want held by the re-made ns/a", h, ok)
	}
}

func TestGateForgetsEndedJobs(t *testing.T) {
	f := newGateFixture()
	f.gate.Acquire(testRepo, "ns/a", nil)
	f.job("a", false)
	f.gate.Release(testRepo, "ns/a")
	f.gate.Release(testRepo, "ns/never-created")
	f.job("a", true)
	f.clock.Step(expectationTTL + time.Second)
	f.gate.Holder(testRepo, "ns/x")
	if n := len(f.gate.ended); n != 0 {
		t.Errorf("%d ended Jobs remembered after the lister caught up and the TTL passed", n)
	}
}
