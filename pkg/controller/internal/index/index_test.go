package index

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func names[T metav1.Object](objs []T) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

func informer(objs ...any) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{}, nil, 0, cache.Indexers{})
	for _, o := range objs {
		_ = inf.GetStore().Add(o)
	}
	return inf
}

func bc(ns, name, repoNS, repo string) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1beta1.BackupConfigurationSpec{Repository: v1beta1.ObjectRef{Namespace: repoNS, Name: repo}}}
}

// A Repository's users are found by index, in any namespace, and the same
// way when the index is missing (the scan).
func TestByRepository(t *testing.T) {
	objs := []any{bc("a", "one", "", "repo"), bc("b", "two", "a", "repo"), bc("a", "other", "", "repo2"), bc("a", "none", "", ""),
		&v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "rs"}, Spec: v1beta1.RestoreSessionSpec{Repository: v1beta1.ObjectRef{Name: "repo"}}}}
	indexed := informer(objs...)
	if err := ByRepository.AddTo(indexed); err != nil {
		t.Fatal(err)
	}
	if err := ByRepository.AddTo(indexed); err != nil { // a second controller adds it again
		t.Fatalf("adding the index twice: %v", err)
	}
	scanned := informer(objs...)
	for name, inf := range map[string]cache.SharedIndexInformer{"index": indexed, "scan": scanned} {
		if got := names(Lookup[*v1beta1.BackupConfiguration](inf, ByRepository, "a/repo")); !slices.Equal(got, []string{"a/one", "b/two"}) {
			t.Errorf("%s: configurations of a/repo = %v", name, got)
		}
		if got := names(Lookup[*v1beta1.RestoreSession](inf, ByRepository, "a/repo")); !slices.Equal(got, []string{"a/rs"}) {
			t.Errorf("%s: restores of a/repo = %v", name, got)
		}
		if got := Lookup[*v1beta1.BackupConfiguration](inf, ByRepository, "b/repo"); len(got) != 0 {
			t.Errorf("%s: b/repo has no users, got %v", name, names(got))
		}
	}
}

func TestByInvoker(t *testing.T) {
	s := func(ns, name, kind, invoker string) *v1beta1.BackupSession {
		return &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: kind, Name: invoker}}}
	}
	inf := informer(s("a", "s1", v1beta1.KindBackupConfiguration, "x"), s("a", "s2", v1beta1.KindBackupConfiguration, "x"),
		s("b", "s3", v1beta1.KindBackupConfiguration, "x"), s("a", "s4", v1beta1.KindBackupConfiguration, "y"), s("a", "s5", "Other", "x"))
	if err := ByInvoker.AddTo(inf); err != nil {
		t.Fatal(err)
	}
	got := names(SessionsOf(inf, "a", "x"))
	if !slices.Equal(got, []string{"a/s1", "a/s2"}) {
		t.Errorf("sessions of a/x = %v", got)
	}
}
