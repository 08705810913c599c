package backupsession

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
)

// A sync that runs on a stale cache (the session not yet final there) after
// the write that ended the session must not rewrite the final status: the
// watchdog failed the session as Pending too long and stopped the Job; the
// stale sync would see the Job being deleted and replace the true reason
// with "deleted before it reported a result".
func TestStaleSyncKeepsFinalStatus(t *testing.T) {
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodPending, t0, unschedulable)
	stale := f.session("bc-1").DeepCopy() // Running, as the cache still shows it

	f.clock.Step(6 * time.Minute)
	f.sync("bc-1")
	final := f.session("bc-1")
	if final.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase = %s, want Failed", final.Status.Phase)
	}

	// The stale object goes back into the cache; its write conflicts, as a
	// write with an old resourceVersion does on a real API server.
	if err := f.sinf.Stow().V1beta1().BackupSessions().Informer().GetIndexer().Update(stale); err != nil {
		t.Fatal(err)
	}
	conflicted := false
	f.stow.PrependReactor("update", "backupsessions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && !conflicted {
			conflicted = true
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "stow.dev", Resource: "backupsessions"}, "bc-1", nil)
		}
		return false, nil, nil
	})
	if err := f.syncErr("bc-1"); err != nil {
		t.Fatal(err)
	}
	got := f.session("bc-1")
	if got.Status.Phase != final.Status.Phase || got.Status.Reason != final.Status.Reason {
		t.Fatalf("a stale sync rewrote the final status: %s %q, was %s %q", got.Status.Phase, got.Status.Reason, final.Status.Phase, final.Status.Reason)
	}
}

// A sync on a cache that has not yet seen the controller's own write that
// ended the session does nothing: before internal.OwnWrites it saw the
// stopped Job gone, announced a second, different end ("deleted before it
// reported a result") in an Event and pushed the session's metrics again;
// only the status write was refused. Once the cache shows the write, syncs
// run again.
func TestStaleSyncActsNoMore(t *testing.T) {
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}
	s := newSession("bc-1", "bc", t0, "")
	s.ResourceVersion = "1"
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), s)
	controllertest.StampResourceVersions(&f.stow.Fake, "backupsessions")
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodPending, t0, unschedulable)
	stale := f.session("bc-1").DeepCopy()

	f.clock.Step(6 * time.Minute)
	f.sync("bc-1")
	final := f.session("bc-1")
	if final.Status.Phase != v1beta1.BackupSessionFailed || final.ResourceVersion == stale.ResourceVersion {
		t.Fatalf("phase %s, resourceVersion %s (was %s): want Failed by a write", final.Status.Phase, final.ResourceVersion, stale.ResourceVersion)
	}
	f.events()
	pushes := len(f.pusher.finished)

	if err := f.sinf.Stow().V1beta1().BackupSessions().Informer().GetIndexer().Update(stale); err != nil {
		t.Fatal(err)
	}
	writes := len(f.stow.Actions())
	if err := f.syncErr("bc-1"); err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("a sync on the stale cache recorded Events: %q", ev)
	}
	if len(f.pusher.finished) != pushes {
		t.Errorf("a sync on the stale cache pushed the session's metrics again (%d pushes, was %d)", len(f.pusher.finished), pushes)
	}
	if n := len(f.stow.Actions()); n != writes {
		t.Errorf("a sync on the stale cache called the API: %v", f.stow.Actions()[writes:])
	}
	if got := f.requeued[ns+"/bc-1"]; got != internal.StaleRequeue {
		t.Errorf("requeued after %s, want %s (look again once the cache caught up)", got, internal.StaleRequeue)
	}

	f.resync()
	f.sync("bc-1")
	if got := f.session("bc-1"); got.Status.Phase != final.Status.Phase || got.Status.Reason != final.Status.Reason {
		t.Fatalf("status after the cache caught up: %s %q, want %s %q", got.Status.Phase, got.Status.Reason, final.Status.Phase, final.Status.Reason)
	}
}
