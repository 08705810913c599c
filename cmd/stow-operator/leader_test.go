package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// A leader whose controllers fail to start (a transient API error while
// ensuring the built-ins) gives the Lease up and returns the error, so its
// pod restarts and a standby takes over. client-go ignores what the leading
// function returns: the replica used to keep renewing the Lease, healthy to
// its probes, while nothing ran.
func TestLeaderWhoseControllersFailedGivesUpTheLease(t *testing.T) {
	kube := k8sfake.NewSimpleClientset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runWithLeaderElection(ctx, options{LeaderElectNamespace: "stow-system"}, kube, record.NewFakeRecorder(10), newHealth(),
			func(context.Context) error {
				return errors.New("ensure Function update-status: etcdserver: request timed out")
			})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "request timed out") {
			t.Fatalf("returned %v, want the controllers' error", err)
		}
	case <-ctx.Done():
		t.Fatal("the controllers failed at start, but the replica still holds the Lease")
	}
	lease, err := kube.CoordinationV1().Leases("stow-system").Get(context.Background(), leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("the Lease is still held by %q after the controllers failed", *h)
	}
}
