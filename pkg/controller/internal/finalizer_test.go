package internal

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestJSONPointer(t *testing.T) {
	for in, want := range map[string]string{
		"spec.retryConfig.delay":                "/spec/retryConfig/delay",
		"spec.hooks[0].exec.command[1]":         "/spec/hooks/0/exec/command/1",
		"spec.selector[app.kubernetes.io/name]": "/spec/selector/app.kubernetes.io~1name",
		"status.conditions[2].reason":           "/status/conditions/2/reason",
		"metadata.finalizers":                   "",
		"spec":                                  "",
		"spec.a[":                               "",
		"":                                      "",
	} {
		got, ok := jsonPointer(in)
		if (want == "") == ok || got != want {
			t.Errorf("jsonPointer(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// A BackupConfiguration stored under a looser schema (retryConfig.delay
// "soon") is refused on every write, a finalizer removal too: once it is
// being deleted, the invalid field goes with the finalizer, and its
// namespace can finish terminating.
func TestPatchFinalizersOfAnObjectTheSchemaRefuses(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: v1beta1.GroupName, Kind: v1beta1.KindBackupConfiguration}, "bad-delay", field.ErrorList{
		field.Invalid(field.NewPath("spec", "retryConfig", "delay"), "string", "type conversion error from 'string' to 'google.protobuf.Duration'"),
		field.Invalid(field.NewPath("metadata", "name"), "x", "never removed"),
	})
	now := metav1.Now()
	obj := &metav1.ObjectMeta{Name: "bad-delay", ResourceVersion: "7", Finalizers: []string{"other.io/keep"}}

	var sent []types.PatchType
	var last []byte
	patch := func(pt types.PatchType, data []byte) error {
		sent, last = append(sent, pt), data
		if pt == types.MergePatchType {
			return invalid
		}
		return nil
	}
	if err := PatchFinalizers(obj, patch); !apierrors.IsInvalid(err) || len(sent) != 1 {
		t.Fatalf("an object not being deleted: err %v after %v; want the Invalid error after the one merge patch", err, sent)
	}

	sent = nil
	obj.DeletionTimestamp = &now
	if err := PatchFinalizers(obj, patch); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[1] != types.JSONPatchType {
		t.Fatalf("patches %v; want the merge patch, then a JSON patch", sent)
	}
	var ops []map[string]any
	if err := json.Unmarshal(last, &ops); err != nil {
		t.Fatal(err)
	}
	got := string(last)
	for _, want := range []string{`{"op":"test","path":"/metadata/resourceVersion","value":"7"}`, `{"op":"remove","path":"/spec/retryConfig/delay"}`,
		`{"op":"add","path":"/metadata/finalizers","value":["other.io/keep"]}`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON patch %s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "/metadata/name") || len(ops) != 3 {
		t.Errorf("JSON patch %s touches more than the invalid spec field and the finalizers", got)
	}

	// Still refused: both errors are returned.
	patch = func(types.PatchType, []byte) error { return invalid }
	if err := PatchFinalizers(obj, patch); err == nil || !strings.Contains(err.Error(), "failed too") {
		t.Errorf("err = %v", err)
	}
	// Another error is returned as it is.
	other := errors.New("connection refused")
	if err := PatchFinalizers(obj, func(types.PatchType, []byte) error { return other }); err != other {
		t.Errorf("err = %v", err)
	}
}
