package builtins

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/builtin"
)

// The built-in Functions and Tasks are created, moved to a new image, and
// left alone when they match.
func TestEnsureBuiltins(t *testing.T) {
	ctx := context.Background()
	stow := fake.NewSimpleClientset()
	if err := Ensure(ctx, stow, "stow:1"); err != nil {
		t.Fatal(err)
	}
	fns, _ := stow.StowV1beta1().Functions().List(ctx, metav1.ListOptions{})
	tasks, _ := stow.StowV1beta1().Tasks().List(ctx, metav1.ListOptions{})
	if len(fns.Items) != len(builtin.Functions("stow:1")) || len(tasks.Items) != len(builtin.Tasks()) {
		t.Fatalf("created %d Functions and %d Tasks", len(fns.Items), len(tasks.Items))
	}
	if err := Ensure(ctx, stow, "stow:2"); err != nil {
		t.Fatal(err)
	}
	fn, err := stow.StowV1beta1().Functions().Get(ctx, fns.Items[0].Name, metav1.GetOptions{})
	if err != nil || fn.Spec.Image != "stow:2" {
		t.Fatalf("after a new image: %v %v", fn, err)
	}
	stow.ClearActions()
	if err := Ensure(ctx, stow, "stow:2"); err != nil {
		t.Fatal(err)
	}
	for _, a := range stow.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unchanged built-ins: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// An edited or deleted built-in is put back at once, with a Warning Event;
// a Function of another name is left alone.
func TestBuiltinKeeperRestoresEditedBuiltins(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stow := fake.NewSimpleClientset()
	if err := Ensure(ctx, stow, "stow:1"); err != nil {
		t.Fatal(err)
	}
	inf := externalversions.NewSharedInformerFactory(stow, 0)
	rec := record.NewFakeRecorder(10)
	k, err := NewKeeper(stow, "stow:1", inf, rec)
	if err != nil {
		t.Fatal(err)
	}
	inf.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- k.Run(ctx, 1) }()
	defer func() { cancel(); <-done }()
	inf.WaitForCacheSync(ctx.Done())

	fns := stow.StowV1beta1().Functions()
	own := &v1beta1.Function{ObjectMeta: metav1.ObjectMeta{Name: "my-backup"}, Spec: v1beta1.FunctionSpec{Image: "mine:1"}}
	if _, err := fns.Create(ctx, own, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Stash's documentation shows this Function, with Stash's image.
	edited, err := fns.Get(ctx, v1beta1.FunctionUpdateStatus, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	edited.Spec.Image = "appscode/stash:0.10.0"
	if _, err := fns.Update(ctx, edited, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := stow.StowV1beta1().Tasks().Delete(ctx, builtin.Tasks()[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		fn, err := fns.Get(ctx, v1beta1.FunctionUpdateStatus, metav1.GetOptions{})
		if err != nil || fn.Spec.Image != "stow:1" {
			return false, nil
		}
		_, err = stow.StowV1beta1().Tasks().Get(ctx, builtin.Tasks()[0].Name, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the edited Function and the deleted Task were not put back: %v", err)
	}
	select {
	case e := <-rec.Events:
		if !strings.Contains(e, "Warning "+EventRestored) || !strings.Contains(e, v1beta1.FunctionUpdateStatus) {
			t.Errorf("event %q", e)
		}
	case <-time.After(10 * time.Second):
		t.Error("no Event says the built-in was put back")
	}
	if got, err := fns.Get(ctx, "my-backup", metav1.GetOptions{}); err != nil || got.Spec.Image != "mine:1" {
		t.Errorf("a Function of another name was changed: %+v %v", got, err)
	}
}
