// Package lookup reads the objects a controller only checks (a PVC exists,
// a Secret holds a key, a Namespace's labels) on demand, instead of caching
// every object of that kind in the cluster. The operator's memory then
// depends on what Stow references, not on how many Secrets or PVCs the
// cluster holds (docs/performance.md, "Memory").
//
// A Reader keeps, per referenced object, only what its Fetch returns (a small
// summary, never a Secret's values), in one of two modes:
//
//   - with a watch (Run): a metadata-only watch of the whole kind, with no
//     store behind it, tells which object changed; the Reader forgets that
//     object's summary and calls its handlers (the controller re-queues the
//     objects that reference it). Summaries are kept until an event or a
//     restart of the watch, so a steady state costs no reads;
//   - without (TTL): summaries are kept for a short time, which spares the
//     thousand configurations of one Repository a thousand reads of its
//     Secret; a change is seen when the caller looks again (the controller
//     re-checks a failing check after a delay and every one at resync).
package lookup

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Fetch reads one object and returns what the caller keeps of it. A
// NotFound error is remembered like a value; other errors are not.
type Fetch[T any] func(ctx context.Context, namespace, name string) (T, error)

// Reader reads objects on demand and remembers their summaries (see the
// package comment for when it forgets them).
type Reader[T any] struct {
	name  string
	fetch Fetch[T]
	ttl   time.Duration // > 0: TTL mode
	idle  time.Duration // watch mode: forget summaries not read for this long
	now   func() time.Time

	mu        sync.Mutex
	memo      map[string]*entry[T]
	inflight  map[string]*flight
	live      bool // watch mode: the watch runs, so the memo is trusted
	swept     time.Time
	onChange  []func(namespace, name string)
	onRestart []func()
}

type entry[T any] struct {
	val  T
	err  error // nil or NotFound
	at   time.Time
	used time.Time
}

// flight counts fetches of one key under way; an event during them makes
// their (possibly older) answer unfit to remember.
type flight struct {
	n     int
	stale bool
}

// NewTTL returns a Reader that remembers each answer for ttl.
func NewTTL[T any](name string, ttl time.Duration, fetch Fetch[T]) *Reader[T] {
	return newReader(name, fetch, ttl)
}

// NewWatched returns a Reader whose answers are remembered while Run's watch
// runs, until an event of the object; before Run (or while the watch is
// down) every Get reads.
func NewWatched[T any](name string, fetch Fetch[T]) *Reader[T] {
	return newReader(name, fetch, 0)
}

func newReader[T any](name string, fetch Fetch[T], ttl time.Duration) *Reader[T] {
	return &Reader[T]{name: name, fetch: fetch, ttl: ttl, idle: time.Hour, now: time.Now,
		memo: map[string]*entry[T]{}, inflight: map[string]*flight{}}
}

// OnChange registers fn, called with an object's namespace and name on every
// watch event of it (any object of the kind, referenced or not).
func (r *Reader[T]) OnChange(fn func(namespace, name string)) { r.onChange = append(r.onChange, fn) }

// OnRestart registers fn, called whenever the watch (re)starts from a fresh
// resourceVersion: events may have been missed, so everything that depends
// on the kind must be looked at again.
func (r *Reader[T]) OnRestart(fn func()) { r.onRestart = append(r.onRestart, fn) }

func key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// Get returns the summary of namespace/name, remembered or read now.
func (r *Reader[T]) Get(ctx context.Context, namespace, name string) (T, error) {
	k := key(namespace, name)
	now := r.now()
	r.mu.Lock()
	if e, ok := r.memo[k]; ok && r.fresh(e, now) {
		e.used = now
		r.mu.Unlock()
		return e.val, e.err
	}
	f := r.inflight[k]
	if f == nil {
		f = &flight{}
		r.inflight[k] = f
	}
	f.n++
	r.mu.Unlock()

	val, err := r.fetch(ctx, namespace, name)

	r.mu.Lock()
	defer r.mu.Unlock()
	if f.n--; f.n == 0 && r.inflight[k] == f {
		delete(r.inflight, k)
	}
	if (err == nil || apierrors.IsNotFound(err)) && !f.stale && (r.ttl > 0 || r.live) {
		r.memo[k] = &entry[T]{val: val, err: err, at: now, used: now}
		r.sweep(now)
	}
	return val, err
}

func (r *Reader[T]) fresh(e *entry[T], now time.Time) bool {
	if r.ttl > 0 {
		return now.Sub(e.at) < r.ttl
	}
	return r.live
}

// sweep drops expired (TTL) or unused (watch) summaries, at most once per
// interval, so the memo holds what is referenced now.
func (r *Reader[T]) sweep(now time.Time) {
	every := r.idle
	if r.ttl > 0 {
		every = 10 * r.ttl
	}
	if now.Sub(r.swept) < every {
		return
	}
	r.swept = now
	for k, e := range r.memo {
		if (r.ttl > 0 && now.Sub(e.at) >= r.ttl) || (r.ttl == 0 && now.Sub(e.used) >= r.idle) {
			delete(r.memo, k)
		}
	}
}

// Forget drops what is remembered of namespace/name (the caller knows it
// changed), or of everything when name is "".
func (r *Reader[T]) Forget(namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		r.forgetAll()
		return
	}
	k := key(namespace, name)
	delete(r.memo, k)
	if f := r.inflight[k]; f != nil {
		f.stale = true
	}
}

func (r *Reader[T]) forgetAll() {
	clear(r.memo)
	for _, f := range r.inflight {
		f.stale = true
	}
}

// Notify is what a watch event of namespace/name does: forget it and call
// the OnChange handlers.
func (r *Reader[T]) Notify(namespace, name string) {
	r.Forget(namespace, name)
	for _, fn := range r.onChange {
		fn(namespace, name)
	}
}

// Live reports whether the watch runs (answers are remembered).
func (r *Reader[T]) Live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// Len is the number of remembered summaries.
func (r *Reader[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.memo)
}

// Run watches lw (a metadata-only list/watch of the kind in all namespaces)
// until ctx is done. It lists with limit 1 only to learn a resourceVersion,
// so no copy of the kind is ever held: events are turned into Forget and the
// OnChange handlers, and each (re)start from a new resourceVersion into
// forgetting everything and the OnRestart handlers.
func (r *Reader[T]) Run(ctx context.Context, lw cache.ListerWatcherWithContext) {
	logger := klog.FromContext(ctx).WithValues("lookup", r.name)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		backoff = min(max(2*backoff, time.Second), 30*time.Second)
		list, err := lw.ListWithContext(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			logger.Error(err, "Cannot list to start the watch; every check reads until it runs")
			continue
		}
		lm, err := meta.ListAccessor(list)
		if err != nil || lm.GetResourceVersion() == "" {
			logger.Error(err, "List has no resourceVersion to watch from")
			continue
		}
		r.mu.Lock()
		r.forgetAll()
		r.mu.Unlock()
		for _, fn := range r.onRestart {
			fn()
		}
		if r.watch(ctx, logger, lw, lm.GetResourceVersion()) {
			backoff = 0 // it ran: restart at once
		}
		r.mu.Lock()
		r.live = false
		r.forgetAll()
		r.mu.Unlock()
	}
}

// watch follows events from rv, reconnecting from the last seen version,
// and returns when rv is too old (410 Gone) or a reconnect fails; ran tells
// whether any watch was established.
func (r *Reader[T]) watch(ctx context.Context, logger klog.Logger, lw cache.WatcherWithContext, rv string) (ran bool) {
	for ctx.Err() == nil {
		w, err := lw.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if !apierrors.IsGone(err) && !apierrors.IsResourceExpired(err) {
				logger.Error(err, "Watch failed; restarting it")
			}
			return ran
		}
		if !ran {
			// From here on every change after rv is delivered, so what
			// is read now may be remembered until its next event.
			r.mu.Lock()
			r.live = true
			r.mu.Unlock()
		}
		ran = true
		gone := false
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					gone = true
				} else {
					logger.V(2).Info("Watch error; reconnecting", "err", err)
				}
				break
			}
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				continue
			}
			if v := m.GetResourceVersion(); v != "" {
				rv = v
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			r.Notify(m.GetNamespace(), m.GetName())
		}
		w.Stop()
		if gone {
			return ran
		}
	}
	return ran
}
