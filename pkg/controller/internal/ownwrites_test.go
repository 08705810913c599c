package internal

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testingclock "k8s.io/utils/clock/testing"
)

func TestOwnWrites(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	w := NewOwnWrites(clk)
	if w.Stale("ns/a", "5") {
		t.Fatal("a key never written is stale")
	}
	w.Replaced("ns/a", "5", "6", "")
	for _, v := range []string{"5", "6"} {
		if !w.Stale("ns/a", v) {
			t.Errorf("version %s, replaced by an own write, is not stale", v)
		}
	}
	if w.Stale("ns/b", "5") {
		t.Error("another key's version is stale")
	}
	if w.Stale("ns/a", "") {
		t.Error("an object without a resourceVersion (fake clientset) is stale")
	}
	if w.Stale("ns/a", "7") {
		t.Error("a version no write replaced is stale")
	}
	if w.Stale("ns/a", "5") {
		t.Error("still stale after the cache showed a newer version")
	}

	w.Replaced("ns/a", "8")
	w.Forget("ns/a")
	if w.Stale("ns/a", "8") {
		t.Error("stale after Forget")
	}

	w.Replaced("ns/a", "9")
	clk.Step(staleHold + time.Second)
	if w.Stale("ns/a", "9") {
		t.Errorf("a write holds its object back longer than %s", staleHold)
	}

	var none *OwnWrites
	none.Replaced("ns/a", "1")
	if none.Stale("ns/a", "1") {
		t.Error("a nil OwnWrites holds objects back")
	}
}

// UpdateStatus records the version it started from and, after a conflict,
// the one it wrote over; a failed write records nothing.
func TestUpdateStatusRecordsReplacedVersions(t *testing.T) {
	obj := func(rv string) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Namespace: "ns", Name: "a", ResourceVersion: rv}
	}
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "things"}, "a", errors.New("changed"))
	w := NewOwnWrites(nil)
	calls := 0
	err := UpdateStatus(w, obj("3"), func() (*metav1.ObjectMeta, error) { return obj("4"), nil },
		func(*metav1.ObjectMeta) bool { return true },
		func(*metav1.ObjectMeta) error {
			if calls++; calls == 1 {
				return conflict
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Stale("ns/a", "3") || !w.Stale("ns/a", "4") {
		t.Error("the versions a successful write replaced are not both stale")
	}

	w = NewOwnWrites(nil)
	failed := errors.New("refused")
	if err := UpdateStatus(w, obj("3"), func() (*metav1.ObjectMeta, error) { return obj("3"), nil },
		func(*metav1.ObjectMeta) bool { return true },
		func(*metav1.ObjectMeta) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("err = %v, want %v", err, failed)
	}
	if w.Stale("ns/a", "3") {
		t.Error("a failed write made its version stale")
	}
}
