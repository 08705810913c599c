// Package lockholder answers one question for the in-Job runner: does the
// Stow Job pod whose hostname holds a restic lock still run? Jobs have no
// Kubernetes API access; the operator, which knows which of its pods live,
// serves the answer over HTTP next to its embedded Pushgateway, and the
// runner removes a lock of this cluster's Stow pods only when the answer is
// "no" (docs/reliability.md, "Repository locks").
package lockholder

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Path is where the operator serves answers: GET Path + <hostname>.
const Path = "/stow/v1/lock-holders/"

// Answer is the operator's reply.
type Answer struct {
	Host string `json:"host"`
	// Runs is true while a pod with this hostname exists and has not
	// finished: its restic may still hold the lock.
	Runs bool `json:"runs"`
	// Pod is <namespace>/<name> of the pod, when one exists.
	Pod string `json:"pod,omitempty"`
	// Reason says why, for logs.
	Reason string `json:"reason"`
}

// PodLister lists the pods matching a label selector in every namespace,
// from the API (not a cache: a pod created a moment ago must be seen).
type PodLister func(ctx context.Context, selector string) ([]corev1.Pod, error)

// MaxConcurrentLists bounds the pod lists the answers make at once: the
// port is open to every pod of the cluster, and each answer is a read of
// the API server (not of a cache), which a loop of questions would
// otherwise multiply without limit. A question beyond it waits, and gets
// 503 if its time runs out: the runner then takes the holder for running,
// which is always safe.
const MaxConcurrentLists = 4

// Handler answers for hostnames that start with prefix (this cluster's Stow
// Job pods); any other hostname gets 404, since the operator knows nothing
// about it.
func Handler(prefix string, list PodLister) http.Handler {
	slots := make(chan struct{}, MaxConcurrentLists)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		host := strings.TrimPrefix(r.URL.Path, Path)
		if host == "" || strings.Contains(host, "/") || !strings.HasPrefix(host, prefix) {
			http.Error(w, fmt.Sprintf("%q is not the hostname of a Stow Job pod of this cluster", host), http.StatusNotFound)
			return
		}
		sel := labels.Set{v1beta1.LabelResticHost: host}.String()
		if _, err := labels.Parse(sel); err != nil {
			http.Error(w, "invalid hostname", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			http.Error(w, "too many questions at once; try again", http.StatusServiceUnavailable)
			return
		}
		pods, err := list(ctx, sel)
		if err != nil {
			http.Error(w, "listing pods: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Judge(host, pods))
	})
}

// Judge decides from the pods carrying the hostname label whether the lock
// holder may still run. A pod being deleted still runs until it is gone: its
// containers get their grace period.
func Judge(host string, pods []corev1.Pod) Answer {
	a := Answer{Host: host, Reason: "no pod has this hostname: it was deleted"}
	for _, p := range pods {
		a.Pod = p.Namespace + "/" + p.Name
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			a.Reason = fmt.Sprintf("pod %s has finished (%s)", a.Pod, p.Status.Phase)
		default:
			a.Runs, a.Reason = true, fmt.Sprintf("pod %s is %s", a.Pod, p.Status.Phase)
			return a
		}
	}
	return a
}

// Ask asks the operator at baseURL about host. Any failure is an error: the
// caller must then treat the holder as running.
func Ask(ctx context.Context, client *http.Client, baseURL, host string) (Answer, error) {
	if baseURL == "" {
		return Answer{}, fmt.Errorf("no operator URL to ask whether %s runs", host)
	}
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+Path+url.PathEscape(host), nil)
	if err != nil {
		return Answer{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("asking the operator whether %s runs: %v", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("asking the operator whether %s runs: %s", host, resp.Status)
	}
	var a Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return Answer{}, fmt.Errorf("asking the operator whether %s runs: %v", host, err)
	}
	if a.Host != host {
		return Answer{}, fmt.Errorf("asking the operator whether %s runs: the answer is about %q", host, a.Host)
	}
	return a, nil
}
