package main

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/pkg/builtin"
)

// ensureBuiltins creates the built-in Functions and Tasks, or updates their
// spec when it differs (a new --image, a new operator version).
func ensureBuiltins(ctx context.Context, stow versioned.Interface, image string) error {
	logger := klog.FromContext(ctx)
	fc := stow.StowV1beta1().Functions()
	for _, want := range builtin.Functions(image) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := fc.Get(ctx, want.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = fc.Create(ctx, want, metav1.CreateOptions{})
				if err == nil {
					logger.Info("Created built-in Function", "name", want.Name)
				}
				return err
			}
			if err != nil || equality.Semantic.DeepEqual(cur.Spec, want.Spec) {
				return err
			}
			cur.Spec = want.Spec
			_, err = fc.Update(ctx, cur, metav1.UpdateOptions{})
			if err == nil {
				logger.Info("Updated built-in Function", "name", want.Name)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure Function %s: %w", want.Name, err)
		}
	}
	tc := stow.StowV1beta1().Tasks()
	for _, want := range builtin.Tasks() {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := tc.Get(ctx, want.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = tc.Create(ctx, want, metav1.CreateOptions{})
				if err == nil {
					logger.Info("Created built-in Task", "name", want.Name)
				}
				return err
			}
			if err != nil || equality.Semantic.DeepEqual(cur.Spec, want.Spec) {
				return err
			}
			cur.Spec = want.Spec
			_, err = tc.Update(ctx, cur, metav1.UpdateOptions{})
			if err == nil {
				logger.Info("Updated built-in Task", "name", want.Name)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure Task %s: %w", want.Name, err)
		}
	}
	return nil
}
