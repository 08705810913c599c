package repository

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowfake "github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/metrics"
)

type fixture struct {
	t    *testing.T
	stow *stowfake.Clientset
	sinf externalversions.SharedInformerFactory
	rec  *record.FakeRecorder
	c    *Controller
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	kube := k8sfake.NewClientset()
	f := &fixture{t: t, stow: stowfake.NewSimpleClientset(objs...), rec: record.NewFakeRecorder(50)}
	f.sinf = externalversions.NewSharedInformerFactory(f.stow, 0)
	f.c = NewController(kube, f.stow, f.sinf, f.rec)
	f.c.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return f
}

func (f *fixture) sync(ns, name string) {
	f.t.Helper()
	ctx := context.Background()
	s := f.sinf.Stow().V1beta1()
	repos, _ := f.stow.StowV1beta1().Repositories("").List(ctx, metav1.ListOptions{})
	bcs, _ := f.stow.StowV1beta1().BackupConfigurations("").List(ctx, metav1.ListOptions{})
	rss, _ := f.stow.StowV1beta1().RestoreSessions("").List(ctx, metav1.ListOptions{})
	bss, _ := f.stow.StowV1beta1().BackupSessions("").List(ctx, metav1.ListOptions{})
	for inf, objs := range map[cache.SharedIndexInformer][]any{
		s.Repositories().Informer(): items(repos.Items), s.BackupConfigurations().Informer(): items(bcs.Items), s.RestoreSessions().Informer(): items(rss.Items),
		s.BackupSessions().Informer(): items(bss.Items),
	} {
		if err := inf.GetStore().Replace(objs, ""); err != nil {
			f.t.Fatal(err)
		}
	}
	f.stow.ClearActions()
	if _, err := f.c.sync(ctx, ns+"/"+name); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

func items[T any](list []T) []any {
	out := make([]any, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

func (f *fixture) repo(ns, name string) *v1beta1.Repository {
	r, err := f.stow.StowV1beta1().Repositories(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get repository: %v", err)
	}
	return r
}

func (f *fixture) events() string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return strings.Join(out, "\n")
		}
	}
}

func repository(ns string) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns, Generation: 2},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "creds",
			S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}}},
	}
}

func bc(ns, name, repoNS string) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.BackupConfigurationSpec{Repository: v1beta1.ObjectRef{Name: "repo", Namespace: repoNS}}}
}

func rs(ns, name string) *v1beta1.RestoreSession {
	return &v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.RestoreSessionSpec{Repository: v1beta1.ObjectRef{Name: "repo"}}}
}

func TestStatusAndReferences(t *testing.T) {
	deleting := bc("demo", "gone", "")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	deleting.Finalizers = []string{v1beta1.Finalizer}
	f := newFixture(t, repository("demo"), bc("demo", "b", ""), bc("other", "a", "demo"), bc("other", "own", ""), rs("demo", "r"), deleting)
	f.sync("demo", "repo")
	r := f.repo("demo", "repo")
	want := []v1beta1.InvokerReference{
		{Kind: v1beta1.KindBackupConfiguration, Namespace: "demo", Name: "b"},
		{Kind: v1beta1.KindBackupConfiguration, Namespace: "other", Name: "a"},
		{Kind: v1beta1.KindRestoreSession, Namespace: "demo", Name: "r"},
	}
	if len(r.Status.References) != len(want) {
		t.Fatalf("references = %+v, want %+v", r.Status.References, want)
	}
	for i := range want {
		if r.Status.References[i] != want[i] {
			t.Errorf("references[%d] = %+v, want %+v", i, r.Status.References[i], want[i])
		}
	}
	if r.Status.ReferenceCount != 3 {
		t.Errorf("referenceCount = %d, want 3", r.Status.ReferenceCount)
	}
	if r.Status.Backend != "s3" || r.Status.ObservedGeneration != 2 || len(r.Finalizers) != 1 {
		t.Errorf("status backend %q observedGeneration %d finalizers %v", r.Status.Backend, r.Status.ObservedGeneration, r.Finalizers)
	}
	if c := v1beta1.GetCondition(r.Status.Conditions, v1beta1.ValidationPassed); c == nil || c.Status != v1beta1.ConditionTrue {
		t.Errorf("ValidationPassed = %+v", c)
	}

	// Idempotent: a second sync writes nothing.
	f.sync("demo", "repo")
	for _, a := range f.stow.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("idempotent sync wrote: %v", a)
		}
	}

	// A removed invoker disappears from the references.
	_ = f.stow.StowV1beta1().BackupConfigurations("demo").Delete(context.Background(), "b", metav1.DeleteOptions{})
	f.sync("demo", "repo")
	if got := f.repo("demo", "repo").Status.References; len(got) != 2 {
		t.Errorf("references after delete = %+v", got)
	}
}

// However many configurations use a Repository, its status lists the first
// MaxStatusReferences and counts them all: 5,000 made a 450 KB status.
func TestReferencesAreBounded(t *testing.T) {
	objs := []runtime.Object{repository("demo")}
	n := v1beta1.MaxStatusReferences + 50
	for i := range n {
		objs = append(objs, bc("demo", fmt.Sprintf("bc-%04d", i), ""))
	}
	f := newFixture(t, objs...)
	f.sync("demo", "repo")
	st := f.repo("demo", "repo").Status
	if len(st.References) != v1beta1.MaxStatusReferences || st.ReferenceCount != int32(n) {
		t.Fatalf("references %d, referenceCount %d; want %d and %d", len(st.References), st.ReferenceCount, v1beta1.MaxStatusReferences, n)
	}
	if first, last := st.References[0].Name, st.References[len(st.References)-1].Name; first != "bc-0000" || last != fmt.Sprintf("bc-%04d", v1beta1.MaxStatusReferences-1) {
		t.Errorf("listed %s .. %s, want the first in order", first, last)
	}
	// One more user changes only the count.
	_, _ = f.stow.StowV1beta1().BackupConfigurations("demo").Create(context.Background(), bc("demo", "zz-new", ""), metav1.CreateOptions{})
	f.sync("demo", "repo")
	if st := f.repo("demo", "repo").Status; st.ReferenceCount != int32(n+1) || len(st.References) != v1beta1.MaxStatusReferences {
		t.Errorf("after one more: references %d, referenceCount %d", len(st.References), st.ReferenceCount)
	}
}

func TestInvalidRepository(t *testing.T) {
	r := repository("demo")
	r.Spec.Backend.Local = &v1beta1.LocalSpec{MountPath: "/stow/repo"}
	f := newFixture(t, r)
	f.sync("demo", "repo")
	c := v1beta1.GetCondition(f.repo("demo", "repo").Status.Conditions, v1beta1.ValidationPassed)
	if c == nil || c.Status != v1beta1.ConditionFalse || c.Reason != v1beta1.ResourceValidationFailed || !strings.Contains(c.Message, "exactly one backend") {
		t.Errorf("ValidationPassed = %+v", c)
	}
	if ev := f.events(); !strings.Contains(ev, "Warning InvalidSpec") {
		t.Errorf("events = %q", ev)
	}
}

func TestDeletion(t *testing.T) {
	for _, wipe := range []bool{false, true} {
		r := repository("demo")
		r.Spec.WipeOut = wipe
		r.Finalizers = []string{v1beta1.Finalizer}
		now := metav1.Now()
		r.DeletionTimestamp = &now
		f := newFixture(t, r)
		groups := &groupRecorder{}
		f.c.WithMetrics(groups)
		f.sync("demo", "repo")
		got := f.repo("demo", "repo")
		if wipe {
			// This controller runs no Jobs: the data cannot be deleted, so
			// the Repository stays, saying why and what to do.
			c := v1beta1.GetCondition(got.Status.Conditions, v1beta1.WipeOut)
			if len(got.Finalizers) != 1 || len(groups.groups) != 0 || c == nil || c.Reason != ReasonWipeOutRefused ||
				!strings.Contains(c.Message, "set spec.wipeOut to false") {
				t.Errorf("wipeOut without a Job runner: finalizers %v, groups %v, WipeOut %+v", got.Finalizers, groups.groups, c)
			}
			if ev := f.events(); !strings.Contains(ev, "Warning "+EventWipeOutRefused) {
				t.Errorf("events = %q", ev)
			}
			continue
		}
		if len(got.Finalizers) != 0 {
			t.Errorf("finalizers = %v", got.Finalizers)
		}
		if len(groups.groups) != 1 || groups.groups[0] != "Repository/demo/repo" {
			t.Errorf("metrics groups deleted: %v, want the Repository's", groups.groups)
		}
		if ev := f.events(); strings.Contains(ev, "WipeOut") {
			t.Errorf("events = %q", ev)
		}
	}
}

// Changes of a Repository's users are batched: many within invokerBatch
// make one sync, not one each.
func TestInvokersEnqueueTheirRepository(t *testing.T) {
	f := newFixture(t)
	for i := range 100 {
		f.c.onInvoker(bc("other", fmt.Sprintf("a%d", i), "demo"))
	}
	f.c.onInvoker(cache.DeletedFinalStateUnknown{Obj: rs("demo", "r")})
	f.c.onInvoker(&corev1.Pod{})
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("queue length right after the changes = %d, want 0 (batched)", n)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*invokerBatch, true, func(context.Context) (bool, error) {
		return f.c.queue.Len() > 0, nil
	}); err != nil {
		t.Fatal("the Repository was never queued")
	}
	if n := f.c.queue.Len(); n != 1 { // all map to demo/repo, deduplicated
		t.Fatalf("queue length = %d, want 1", n)
	}
	if k, _ := f.c.queue.Get(); k != "demo/repo" {
		t.Errorf("key = %q", k)
	}
}

// groupRecorder records the metrics groups deleted.
type groupRecorder struct {
	metrics.Nop
	groups []string
}

func (g *groupRecorder) DeleteInvokerGroup(_ context.Context, kind, namespace, name string) error {
	g.groups = append(g.groups, kind+"/"+namespace+"/"+name)
	return nil
}
