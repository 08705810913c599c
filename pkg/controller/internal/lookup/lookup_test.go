package lookup

import (
	"context"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// counter is a Fetch that counts its calls and answers from a map.
type counter struct {
	mu    sync.Mutex
	calls int
	have  map[string]string
	block chan struct{} // when set, fetches wait for it
}

func (c *counter) fetch(_ context.Context, ns, name string) (string, error) {
	c.mu.Lock()
	c.calls++
	v, ok := c.have[ns+"/"+name]
	block := c.block
	c.mu.Unlock()
	if block != nil {
		<-block
	}
	if !ok {
		return "", apierrors.NewNotFound(schema.GroupResource{Resource: "things"}, name)
	}
	return v, nil
}

func (c *counter) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls }

func TestTTLRemembersAnswersAndNotFound(t *testing.T) {
	c := &counter{have: map[string]string{"a/x": "1"}}
	r := NewTTL("things", time.Minute, c.fetch)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	for range 3 {
		if v, err := r.Get(context.Background(), "a", "x"); v != "1" || err != nil {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if _, err := r.Get(context.Background(), "a", "missing"); !apierrors.IsNotFound(err) {
			t.Fatalf("Get missing = %v", err)
		}
	}
	if c.n() != 2 {
		t.Errorf("%d fetches for 6 gets of 2 objects within the TTL, want 2", c.n())
	}
	now = now.Add(time.Minute)
	_, _ = r.Get(context.Background(), "a", "x")
	if c.n() != 3 {
		t.Errorf("no fetch after the TTL")
	}
	// Expired answers are swept: only what is asked for stays.
	now = now.Add(20 * time.Minute)
	_, _ = r.Get(context.Background(), "a", "x")
	if r.Len() != 1 {
		t.Errorf("memo holds %d entries, want 1", r.Len())
	}
}

// A watched Reader remembers nothing until its watch runs: a Get before
// (or while the watch is down) always reads.
func TestWatchedReadsUntilLive(t *testing.T) {
	c := &counter{have: map[string]string{"a/x": "1"}}
	r := NewWatched("things", c.fetch)
	_, _ = r.Get(context.Background(), "a", "x")
	_, _ = r.Get(context.Background(), "a", "x")
	if c.n() != 2 || r.Len() != 0 {
		t.Errorf("fetches %d, memo %d before the watch runs; want 2, 0", c.n(), r.Len())
	}
}

// fakeLW serves a list with a resourceVersion and hands out fake watches.
type fakeLW struct {
	mu      sync.Mutex
	rv      string
	lists   int
	watches chan *watch.FakeWatcher
	lastRV  []string
}

func newFakeLW() *fakeLW { return &fakeLW{rv: "10", watches: make(chan *watch.FakeWatcher, 10)} }

func (f *fakeLW) ListWithContext(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if opts.Limit != 1 {
		panic("lookup must list with limit 1: it keeps no copy of the kind")
	}
	return &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{ResourceVersion: f.rv}}, nil
}

func (f *fakeLW) WatchWithContext(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	f.mu.Lock()
	f.lastRV = append(f.lastRV, opts.ResourceVersion)
	f.mu.Unlock()
	w := watch.NewFakeWithChanSize(10, false)
	f.watches <- w
	return w, nil
}

var _ cache.ListerWatcherWithContext = &fakeLW{}

func obj(ns, name, rv string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchForgetsChangedObjectsAndRestartsOnGone(t *testing.T) {
	c := &counter{have: map[string]string{"a/x": "1", "a/y": "2"}}
	r := NewWatched("things", c.fetch)
	var mu sync.Mutex
	var changed []string
	restarts := 0
	r.OnChange(func(ns, name string) { mu.Lock(); changed = append(changed, ns+"/"+name); mu.Unlock() })
	r.OnRestart(func() { mu.Lock(); restarts++; mu.Unlock() })
	lw := newFakeLW()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, lw)
	w := <-lw.watches
	waitFor(t, "the watch to run", r.Live)

	_, _ = r.Get(ctx, "a", "x")
	_, _ = r.Get(ctx, "a", "y")
	_, _ = r.Get(ctx, "a", "x")
	if c.n() != 2 {
		t.Fatalf("%d fetches, want 2 (remembered while the watch runs)", c.n())
	}
	// An event of x: x is read again, y is still remembered; any object's
	// event reaches the handlers (the controller decides who cares).
	c.mu.Lock()
	c.have["a/x"] = "changed"
	c.mu.Unlock()
	w.Modify(obj("a", "x", "11"))
	w.Add(obj("b", "unrelated", "12"))
	waitFor(t, "the events", func() bool { mu.Lock(); defer mu.Unlock(); return len(changed) == 2 })
	if v, _ := r.Get(ctx, "a", "x"); v != "changed" {
		t.Errorf("x = %q after its event", v)
	}
	_, _ = r.Get(ctx, "a", "y")
	if c.n() != 3 {
		t.Errorf("%d fetches, want 3", c.n())
	}
	if r.Len() != 2 {
		t.Errorf("memo holds %d entries; only referenced objects may be kept (want 2)", r.Len())
	}

	// A closed watch resumes from the last resourceVersion, keeping the memo.
	w.Stop()
	w = <-lw.watches
	lw.mu.Lock()
	if got := lw.lastRV[len(lw.lastRV)-1]; got != "12" {
		t.Errorf("rewatch from %q, want 12", got)
	}
	lw.mu.Unlock()

	// 410 Gone: events may be lost, so everything is forgotten, the list
	// taken again and the restart handlers called.
	w.Error(&apierrors.NewGone("too old").ErrStatus)
	<-lw.watches
	waitFor(t, "the restart", func() bool { mu.Lock(); defer mu.Unlock(); return restarts == 2 })
	waitFor(t, "the watch to run again", r.Live)
	if r.Len() != 0 {
		t.Errorf("memo holds %d entries after a restart", r.Len())
	}
	lw.mu.Lock()
	if lw.lists != 2 {
		t.Errorf("%d lists, want 2", lw.lists)
	}
	lw.mu.Unlock()
}

// An event during a read makes the (possibly older) answer unfit to keep.
func TestEventDuringFetchIsNotRemembered(t *testing.T) {
	c := &counter{have: map[string]string{"a/x": "old"}, block: make(chan struct{})}
	r := NewWatched("things", c.fetch)
	lw := newFakeLW()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, lw)
	w := <-lw.watches
	waitFor(t, "the watch to run", r.Live)
	done := make(chan string)
	go func() { v, _ := r.Get(ctx, "a", "x"); done <- v }()
	waitFor(t, "the fetch to start", func() bool { return c.n() == 1 })
	w.Modify(obj("a", "x", "11"))
	waitFor(t, "the event", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.inflight["a/x"] != nil && r.inflight["a/x"].stale
	})
	close(c.block)
	<-done
	if r.Len() != 0 {
		t.Errorf("an answer read across an event was remembered")
	}
}
