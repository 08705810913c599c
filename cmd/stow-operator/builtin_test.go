package main

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/pkg/builtin"
)

// The built-in Functions and Tasks are created, moved to a new image, and
// left alone when they match.
func TestEnsureBuiltins(t *testing.T) {
	ctx := context.Background()
	stow := fake.NewSimpleClientset()
	if err := ensureBuiltins(ctx, stow, "stow:1"); err != nil {
		t.Fatal(err)
	}
	fns, _ := stow.StowV1beta1().Functions().List(ctx, metav1.ListOptions{})
	tasks, _ := stow.StowV1beta1().Tasks().List(ctx, metav1.ListOptions{})
	if len(fns.Items) != len(builtin.Functions("stow:1")) || len(tasks.Items) != len(builtin.Tasks()) {
		t.Fatalf("created %d Functions and %d Tasks", len(fns.Items), len(tasks.Items))
	}
	if err := ensureBuiltins(ctx, stow, "stow:2"); err != nil {
		t.Fatal(err)
	}
	fn, err := stow.StowV1beta1().Functions().Get(ctx, fns.Items[0].Name, metav1.GetOptions{})
	if err != nil || fn.Spec.Image != "stow:2" {
		t.Fatalf("after a new image: %v %v", fn, err)
	}
	stow.ClearActions()
	if err := ensureBuiltins(ctx, stow, "stow:2"); err != nil {
		t.Fatal(err)
	}
	for _, a := range stow.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("unchanged built-ins: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}
