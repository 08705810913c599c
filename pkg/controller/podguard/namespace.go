package podguard

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/pkg/controller/internal/lookup"
	"github.com/stowhq/stow/pkg/resolve"
)

// PodSecurityTTL is how long a namespace's PodSecurity label is trusted
// before it is read again: a namespace labelled restricted later gets
// restricted restore pods within this time.
const PodSecurityTTL = 30 * time.Second

// NamespaceEnforcesRestricted returns the check the Job builders use
// (resolve.Options.NamespaceEnforcesRestricted): whether a namespace
// enforces PodSecurity `restricted`, read on demand and remembered for ttl,
// so the operator does not cache every Namespace. A Namespace that cannot be
// read counts as not restricted: the pod keeps the settings it was resolved
// with, and admission has the last word.
func NamespaceEnforcesRestricted(kube kubernetes.Interface, ttl time.Duration) func(name string) bool {
	r := lookup.NewTTL("namespaces-podsecurity", ttl, func(ctx context.Context, _, name string) (bool, error) {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return ns.Labels[resolve.LabelPodSecurityEnforce] == resolve.PodSecurityRestricted, nil
	})
	return func(name string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		restricted, err := r.Get(ctx, "", name)
		return err == nil && restricted
	}
}
