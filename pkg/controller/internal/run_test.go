package internal

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// A sync that panics on one key is an error for that key (retried with
// backoff), not the end of the worker: the next key is still reconciled.
func TestPanickingSyncStopsOnlyItsKey(t *testing.T) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	var synced []string
	var failed error
	sync := func(_ context.Context, key string) (time.Duration, error) {
		if key == "ns/bad" {
			var m map[string]int
			m["x"]++ // a bug: assignment to a nil map
		}
		synced = append(synced, key)
		return 0, nil
	}
	wrapped := func(ctx context.Context, key string) (time.Duration, error) {
		after, err := recovered(sync)(ctx, key)
		if key == "ns/bad" {
			failed = err
		}
		return after, err
	}
	queue.Add("ns/bad")
	queue.Add("ns/good")
	for i := 0; i < 2; i++ {
		ProcessNext(context.Background(), klog.Background(), queue, wrapped)
	}
	if failed == nil || !strings.Contains(failed.Error(), "panicked") || !strings.Contains(failed.Error(), "ns/bad") {
		t.Errorf("the panic became error %v; want one naming the key and the panic", failed)
	}
	if len(synced) != 1 || synced[0] != "ns/good" {
		t.Errorf("synced %v after the panic, want [ns/good]", synced)
	}
	if n := queue.NumRequeues("ns/bad"); n != 1 {
		t.Errorf("the panicking key was requeued %d times with backoff, want 1", n)
	}
}
