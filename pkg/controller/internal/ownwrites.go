package internal

import (
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// StaleRequeue is when a sync put off by OwnWrites.Stale looks again. The
// watch event of the write brings the key back sooner in the normal case;
// this is the fallback.
const StaleRequeue = time.Second

// staleHold bounds how long one write holds its object's syncs back: a cache
// that has not shown the write by then is let through rather than held
// forever (after an etcd restore, say, an old resourceVersion can come back).
const staleHold = time.Minute

// OwnWrites remembers, per object key, the resourceVersions that the
// controller's own writes replaced, until its informer cache shows a newer
// one. A sync that reads a replaced version runs on a view the controller
// has already acted on and written over: it would repeat what that write
// recorded as done (an Event, a metrics push, a Job, a maintenance run)
// and could record a different outcome, which the status write then
// refuses but the Event and the pushed metrics keep. Such a sync is put off
// (StaleRequeue) instead.
//
// Objects without a resourceVersion (fake clientsets do not set one) are
// never held back.
type OwnWrites struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	byKey map[string]replaced
}

type replaced struct {
	versions []string
	at       time.Time
}

// NewOwnWrites returns an empty OwnWrites; a nil clock is the real one.
func NewOwnWrites(c clock.PassiveClock) *OwnWrites {
	if c == nil {
		c = clock.RealClock{}
	}
	return &OwnWrites{clock: c, byKey: map[string]replaced{}}
}

// Replaced records that a write of the controller to key succeeded over the
// given resourceVersions (the cached one the sync started from and, after
// a conflict, the one read fresh). Empty versions are ignored.
func (w *OwnWrites) Replaced(key string, versions ...string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.byKey[key]
	if !r.at.IsZero() && w.clock.Since(r.at) > staleHold {
		r = replaced{}
	}
	for _, v := range versions {
		if v != "" && !slices.Contains(r.versions, v) {
			r.versions = append(r.versions, v)
		}
	}
	if len(r.versions) == 0 {
		return
	}
	r.at = w.clock.Now()
	w.byKey[key] = r
}

// Stale reports whether version, the cached resourceVersion of key, is one
// an own write replaced. Any other version means the cache has caught up:
// what was remembered for key is dropped.
func (w *OwnWrites) Stale(key, version string) bool {
	if w == nil || version == "" {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.byKey[key]
	if !ok {
		return false
	}
	if slices.Contains(r.versions, version) && w.clock.Since(r.at) <= staleHold {
		return true
	}
	delete(w.byKey, key)
	return false
}

// Forget drops what is remembered for key (the object is gone).
func (w *OwnWrites) Forget(key string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byKey, key)
}
