package main

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// A shutdown by signal is not a failure; an error of the metrics server is.
func TestFailOn(t *testing.T) {
	wait := func(t *testing.T, ctx context.Context) {
		t.Helper()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the context did not end")
		}
	}

	t.Run("signal", func(t *testing.T) {
		parent, stop := context.WithCancelCause(context.Background())
		ctx, cancel, failure := failOn(parent, make(chan error))
		defer cancel()
		stop(errors.New(syscall.SIGTERM.String() + " signal received")) // as signal.NotifyContext does
		wait(t, ctx)
		if err := failure(); err != nil {
			t.Errorf("failure() = %v after a signal; want nil (exit 0)", err)
		}
	})
	t.Run("metrics server failed", func(t *testing.T) {
		errs := make(chan error, 1)
		ctx, cancel, failure := failOn(context.Background(), errs)
		defer cancel()
		boom := errors.New("listen tcp :8080: address already in use")
		errs <- boom
		wait(t, ctx)
		if err := failure(); !errors.Is(err, boom) {
			t.Errorf("failure() = %v; want %v", err, boom)
		}
		if err := failure(); !errors.Is(err, boom) {
			t.Errorf("second failure() = %v; want %v", err, boom)
		}
	})
}
