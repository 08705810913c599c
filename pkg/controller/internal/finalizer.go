package internal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PatchFinalizers writes obj's finalizers (as already changed in memory)
// with patch, as FinalizerPatch. The API server validates every write of an
// object against the schema of today, a finalizer removal too: an object
// stored under an older, looser schema (a field an older Stow accepted)
// could then never lose its finalizer, and its namespace would stay
// Terminating for good. When obj is being deleted and the server refuses it
// as Invalid, the fields it names under spec or status are removed in the
// same patch: the object is going away, and nothing reads them any more.
func PatchFinalizers(obj metav1.Object, patch func(pt types.PatchType, data []byte) error) error {
	err := patch(types.MergePatchType, FinalizerPatch(obj))
	if err == nil || obj.GetDeletionTimestamp() == nil || !apierrors.IsInvalid(err) {
		return err
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return err
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value,omitempty"`
	}
	ops := []op{{Op: "test", Path: "/metadata/resourceVersion", Value: obj.GetResourceVersion()}}
	seen := map[string]bool{}
	var fields []string
	for _, c := range status.Status().Details.Causes {
		p, ok := jsonPointer(c.Field)
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		fields = append(fields, c.Field)
		ops = append(ops, op{Op: "remove", Path: p})
	}
	if len(fields) == 0 {
		return err
	}
	fins := obj.GetFinalizers()
	if fins == nil {
		fins = []string{}
	}
	ops = append(ops, op{Op: "add", Path: "/metadata/finalizers", Value: fins})
	data, _ := json.Marshal(ops)
	if err2 := patch(types.JSONPatchType, data); err2 != nil {
		return fmt.Errorf("%v; removing the invalid field(s) %s with the finalizer failed too: %v", err, strings.Join(fields, ", "), err2)
	}
	return nil
}

// jsonPointer turns a field path of a validation error under spec or status
// ("spec.retryConfig.delay", "spec.hooks[0].name", "spec.labels[a.b/c]")
// into a JSON pointer; ok is false for any other path.
func jsonPointer(field string) (string, bool) {
	var tokens []string
	var cur strings.Builder
	for i := 0; i < len(field); i++ {
		switch ch := field[i]; ch {
		case '.':
			if cur.Len() > 0 {
				tokens = append(tokens, cur.String())
				cur.Reset()
			}
		case '[':
			if cur.Len() > 0 {
				tokens = append(tokens, cur.String())
				cur.Reset()
			}
			end := strings.IndexByte(field[i:], ']')
			if end < 0 {
				return "", false
			}
			tokens = append(tokens, field[i+1:i+end])
			i += end
		default:
			cur.WriteByte(ch)
		}
	}
	if cur.Len() > 0 {
		tokens = append(tokens, cur.String())
	}
	if len(tokens) < 2 || (tokens[0] != "spec" && tokens[0] != "status") {
		return "", false
	}
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, t := range tokens {
		if t == "" {
			return "", false
		}
		b.WriteString("/" + esc.Replace(t))
	}
	return b.String(), true
}
