// Package index holds the informer indexes the controllers share, so that a
// sync costs what its object has, not what the cluster has: which
// BackupConfigurations and RestoreSessions use a Repository, and which
// BackupSessions an invoker made. Without them a Repository's sync scanned
// every configuration of the cluster twice, and every configuration's sync
// every session of its namespace.
package index

import (
	"slices"

	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
)

// Index is a named informer index.
type Index struct {
	Name string
	Func cache.IndexFunc
}

// AddTo adds ix to inf unless it is there already (the informers are shared:
// several controllers add the same index).
func (ix Index) AddTo(inf cache.SharedIndexInformer) error {
	if _, ok := inf.GetIndexer().GetIndexers()[ix.Name]; ok {
		return nil
	}
	return inf.AddIndexers(cache.Indexers{ix.Name: ix.Func})
}

// Lookup returns the objects of inf whose ix value is value. When ix could
// not be added (the informer ran before), it scans the store instead: same
// answer, slower.
func Lookup[T any](inf cache.SharedIndexInformer, ix Index, value string) []T {
	objs, err := inf.GetIndexer().ByIndex(ix.Name, value)
	if err != nil {
		objs = nil
		for _, o := range inf.GetStore().List() {
			if vals, _ := ix.Func(o); slices.Contains(vals, value) {
				objs = append(objs, o)
			}
		}
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// ByRepository indexes BackupConfigurations and RestoreSessions by the
// Repository they use, "<namespace>/<name>" (internal.RepositoryKey).
var ByRepository = Index{Name: "stow.dev/by-repository", Func: func(obj any) ([]string, error) {
	switch o := obj.(type) {
	case *v1beta1.BackupConfiguration:
		if o.Spec.Repository.Name != "" {
			return []string{internal.RepositoryKey(o.Namespace, o.Spec.Repository)}, nil
		}
	case *v1beta1.RestoreSession:
		if o.Spec.Repository.Name != "" {
			return []string{internal.RepositoryKey(o.Namespace, o.Spec.Repository)}, nil
		}
	}
	return nil, nil
}}

// ByInvoker indexes BackupSessions by their invoker, InvokerKey.
var ByInvoker = Index{Name: "stow.dev/by-invoker", Func: func(obj any) ([]string, error) {
	if s, ok := obj.(*v1beta1.BackupSession); ok && s.Spec.Invoker.Name != "" {
		return []string{InvokerKey(s.Namespace, s.Spec.Invoker.Kind, s.Spec.Invoker.Name)}, nil
	}
	return nil, nil
}}

// InvokerKey is the ByInvoker value of the sessions of one invoker.
func InvokerKey(namespace, kind, name string) string {
	return namespace + "/" + kind + "/" + name
}

// SessionsOf returns the BackupSessions of the BackupConfiguration
// namespace/name in sessions, an informer with ByInvoker.
func SessionsOf(sessions cache.SharedIndexInformer, namespace, name string) []*v1beta1.BackupSession {
	return Lookup[*v1beta1.BackupSession](sessions, ByInvoker, InvokerKey(namespace, v1beta1.KindBackupConfiguration, name))
}
