package main

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/pkg/builtin"
)

// ensureBuiltins creates the built-in Functions and Tasks, or updates their
// spec when it differs (a new --image, a new operator version).
func ensureBuiltins(ctx context.Context, stow versioned.Interface, image string) error {
	err := ensureSpecs(ctx, "Function", stow.StowV1beta1().Functions(), builtin.Functions(image),
		func(o *v1beta1.Function) *v1beta1.FunctionSpec { return &o.Spec })
	if err != nil {
		return err
	}
	return ensureSpecs(ctx, "Task", stow.StowV1beta1().Tasks(), builtin.Tasks(),
		func(o *v1beta1.Task) *v1beta1.TaskSpec { return &o.Spec })
}

// objectClient is what ensureSpecs needs of a typed cluster-scoped client.
type objectClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// ensureSpecs creates each of wants (objects of kind) that does not exist
// and gives an existing one want's spec (spec points at an object's), with
// conflict retry.
func ensureSpecs[T metav1.Object, S any](ctx context.Context, kind string, client objectClient[T], wants []T, spec func(T) *S) error {
	logger := klog.FromContext(ctx)
	for _, want := range wants {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = client.Create(ctx, want, metav1.CreateOptions{})
				if err == nil {
					logger.Info("Created built-in "+kind, "name", want.GetName())
				}
				return err
			}
			if err != nil || equality.Semantic.DeepEqual(spec(cur), spec(want)) {
				return err
			}
			*spec(cur) = *spec(want)
			_, err = client.Update(ctx, cur, metav1.UpdateOptions{})
			if err == nil {
				logger.Info("Updated built-in "+kind, "name", want.GetName())
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure %s %s: %w", kind, want.GetName(), err)
		}
	}
	return nil
}
