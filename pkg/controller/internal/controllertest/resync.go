// Package controllertest holds helpers for the session controllers' unit
// tests, which drive sync directly against fake clientsets.
package controllertest

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
)

// Resync makes the listers show what the fake API servers hold, as the
// informers would after their watch events: Jobs, Pods and every Stow kind
// the session controllers read.
func Resync(t testing.TB, kube kubernetes.Interface, stow versioned.Interface, kinf informers.SharedInformerFactory, sinf externalversions.SharedInformerFactory) {
	t.Helper()
	ctx, opts := context.Background(), metav1.ListOptions{}
	replace := func(inf cache.SharedIndexInformer, items []any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := inf.GetIndexer().Replace(items, ""); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := kube.BatchV1().Jobs("").List(ctx, opts)
	replace(kinf.Batch().V1().Jobs().Informer(), ptrs(jobs.Items), err)
	pods, err := kube.CoreV1().Pods("").List(ctx, opts)
	replace(kinf.Core().V1().Pods().Informer(), ptrs(pods.Items), err)
	s, si := stow.StowV1beta1(), sinf.Stow().V1beta1()
	bss, err := s.BackupSessions("").List(ctx, opts)
	replace(si.BackupSessions().Informer(), ptrs(bss.Items), err)
	bcs, err := s.BackupConfigurations("").List(ctx, opts)
	replace(si.BackupConfigurations().Informer(), ptrs(bcs.Items), err)
	repos, err := s.Repositories("").List(ctx, opts)
	replace(si.Repositories().Informer(), ptrs(repos.Items), err)
	tasks, err := s.Tasks().List(ctx, opts)
	replace(si.Tasks().Informer(), ptrs(tasks.Items), err)
	fns, err := s.Functions().List(ctx, opts)
	replace(si.Functions().Informer(), ptrs(fns.Items), err)
	rss, err := s.RestoreSessions("").List(ctx, opts)
	replace(si.RestoreSessions().Informer(), ptrs(rss.Items), err)
}

// ptrs returns pointers to the items, as informers store them.
func ptrs[T any](items []T) []any {
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
