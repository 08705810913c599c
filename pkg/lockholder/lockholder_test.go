package lockholder

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func pod(name string, phase corev1.PodPhase) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: corev1.PodStatus{Phase: phase}}
}

func TestHandlerAndAsk(t *testing.T) {
	const prefix = "stow-0123abcd-"
	pods := map[string][]corev1.Pod{
		prefix + "running":  {pod("backup-a", corev1.PodRunning)},
		prefix + "pending":  {pod("backup-b", corev1.PodPending)},
		prefix + "finished": {pod("backup-c", corev1.PodSucceeded)},
		prefix + "failed":   {pod("backup-d", corev1.PodFailed)},
	}
	var asked []string
	srv := httptest.NewServer(Handler(prefix, func(_ context.Context, sel string) ([]corev1.Pod, error) {
		asked = append(asked, sel)
		host := strings.TrimPrefix(sel, v1beta1.LabelResticHost+"=")
		if host == prefix+"broken" {
			return nil, errors.New("apiserver down")
		}
		return pods[host], nil
	}))
	defer srv.Close()
	ctx := context.Background()
	for host, want := range map[string]bool{
		prefix + "running": true, prefix + "pending": true,
		prefix + "finished": false, prefix + "failed": false, prefix + "deleted": false,
	} {
		a, err := Ask(ctx, nil, srv.URL, host)
		if err != nil || a.Runs != want {
			t.Errorf("Ask(%s) = %+v, %v; want runs=%v", host, a, err, want)
		}
	}
	// What the operator cannot answer is an error, never "gone".
	for _, host := range []string{prefix + "broken", "stow-ffffffff-other", "laptop"} {
		if a, err := Ask(ctx, nil, srv.URL, host); err == nil {
			t.Errorf("Ask(%s) = %+v, want an error", host, a)
		}
	}
	if _, err := Ask(ctx, nil, "", prefix+"x"); err == nil {
		t.Error("Ask without an operator URL succeeded")
	}
	for _, sel := range asked {
		if !strings.HasPrefix(sel, v1beta1.LabelResticHost+"="+prefix) {
			t.Errorf("listed pods with selector %q", sel)
		}
	}
}

// However many questions arrive at once, at most MaxConcurrentLists pod
// lists run: the port is open to every pod, and each list reads the API
// server. The 404 of a foreign hostname does not tell this cluster's prefix.
func TestHandlerBoundsConcurrentLists(t *testing.T) {
	const prefix = "stow-0123abcd-"
	var running, most atomic.Int64
	release := make(chan struct{})
	h := Handler(prefix, func(ctx context.Context, _ string) ([]corev1.Pod, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path + "anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), prefix) {
		t.Errorf("foreign hostname: %d %q; want 404 without the prefix", resp.StatusCode, body)
	}
	var wg sync.WaitGroup
	for i := 0; i < 3*MaxConcurrentLists; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := http.Get(srv.URL + Path + prefix + "x"); err == nil {
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
		}()
	}
	err = wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return running.Load() == MaxConcurrentLists, nil
	})
	close(release)
	wg.Wait()
	if err != nil || most.Load() != MaxConcurrentLists {
		t.Errorf("at most %d lists ran at once, want exactly %d (%v)", most.Load(), MaxConcurrentLists, err)
	}
}
