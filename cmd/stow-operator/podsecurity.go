package main

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/pkg/resolve"
)

// podSecurityTTL is how long a namespace's PodSecurity label is trusted
// before it is read again: a namespace labelled restricted later gets
// restricted restore pods within this time.
const podSecurityTTL = 30 * time.Second

// podSecurityLookup answers whether a namespace enforces PodSecurity
// `restricted`, reading the Namespace on demand and remembering the answer
// for a while, so the operator does not cache every Namespace.
type podSecurityLookup struct {
	kube kubernetes.Interface
	ttl  time.Duration
	now  func() time.Time

	mu   sync.Mutex
	seen map[string]podSecurityAnswer
}

type podSecurityAnswer struct {
	restricted bool
	at         time.Time
}

func newPodSecurityLookup(kube kubernetes.Interface, ttl time.Duration) *podSecurityLookup {
	return &podSecurityLookup{kube: kube, ttl: ttl, now: time.Now, seen: map[string]podSecurityAnswer{}}
}

// enforcesRestricted reports false when the Namespace cannot be read: the
// pod then keeps the settings it was resolved with, and admission has the
// last word.
func (l *podSecurityLookup) enforcesRestricted(name string) bool {
	now := l.now()
	l.mu.Lock()
	a, ok := l.seen[name]
	l.mu.Unlock()
	if ok && now.Sub(a.at) < l.ttl {
		return a.restricted
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := l.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ok && a.restricted
	}
	restricted := ns.Labels[resolve.LabelPodSecurityEnforce] == resolve.PodSecurityRestricted
	l.mu.Lock()
	for k, v := range l.seen { // drop what expired: the map stays as small as the namespaces in use
		if now.Sub(v.at) >= l.ttl {
			delete(l.seen, k)
		}
	}
	l.seen[name] = podSecurityAnswer{restricted: restricted, at: now}
	l.mu.Unlock()
	return restricted
}
