package v1beta1

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// The limits kube-apiserver uses (k8s.io/apiserver/pkg/apis/cel).
const (
	celPerCallLimit = 1000000
	celCostBudget   = 10000000
)

// crdValidator validates objects with the OpenAPI schema and the CEL rules
// of one generated CRD, as kube-apiserver does on create.
type crdValidator struct {
	schema validation.SchemaValidator
	ss     *structuralschema.Structural
	cel    *cel.Validator
}

func loadCRD(t *testing.T, plural string) *crdValidator {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../../deploy/crds", "stow.dev_"+plural+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatal(err)
	}
	var in apiextensions.CustomResourceValidation
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(crd.Spec.Versions[0].Schema, &in, nil); err != nil {
		t.Fatal(err)
	}
	sv, _, err := validation.NewSchemaValidator(in.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := structuralschema.NewStructural(in.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}
	return &crdValidator{schema: sv, ss: ss, cel: cel.NewValidator(ss, true, celPerCallLimit)}
}

func (v *crdValidator) validate(obj map[string]interface{}) field.ErrorList {
	errs := validation.ValidateCustomResource(nil, obj, v.schema)
	if v.cel != nil {
		celErrs, _ := v.cel.Validate(context.Background(), nil, v.ss, obj, nil, celCostBudget)
		errs = append(errs, celErrs...)
	}
	return errs
}

// obj parses a JSON document the way kube-apiserver does (integers as
// int64, other numbers as float64).
func obj(t *testing.T, doc string) map[string]interface{} {
	t.Helper()
	m, ok := decodeJSON(t, []byte(doc)).(map[string]interface{})
	if !ok {
		t.Fatalf("%s: not an object", doc)
	}
	return m
}

func decodeJSON(t *testing.T, b []byte) interface{} {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v interface{}
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return numbers(v)
}

func numbers(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// set returns a copy of base with the value at the dotted path replaced.
func set(t *testing.T, base string, path string, value interface{}) map[string]interface{} {
	t.Helper()
	m := obj(t, base)
	cur := m
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = value
	return m
}

// Malformed is testdata/malformed.json, shared with the e2e test
// TestSchemaRejectsMalformedFieldsOnAPIServer.
type Malformed struct {
	Bases map[string]json.RawMessage `json:"bases"`
	Cases []struct {
		Plural string            `json:"plural"`
		Path   string            `json:"path"`
		Values []json.RawMessage `json:"values"`
	} `json:"cases"`
}

func loadMalformed(t *testing.T) Malformed {
	t.Helper()
	raw, err := os.ReadFile("testdata/malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	var m Malformed
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func base(t *testing.T, m Malformed, plural string) string {
	t.Helper()
	b, ok := m.Bases[plural]
	if !ok {
		t.Fatalf("no base for %s", plural)
	}
	return string(b)
}

func TestSchemaRejectsMalformedFields(t *testing.T) {
	m := loadMalformed(t)
	validators := map[string]*crdValidator{}
	n := 0
	for _, c := range m.Cases {
		v := validators[c.Plural]
		if v == nil {
			v = loadCRD(t, c.Plural)
			validators[c.Plural] = v
			if errs := v.validate(obj(t, base(t, m, c.Plural))); len(errs) > 0 {
				t.Fatalf("valid %s rejected: %v", c.Plural, errs)
			}
		}
		for _, raw := range c.Values {
			value := decodeJSON(t, raw)
			n++
			errs := v.validate(set(t, base(t, m, c.Plural), c.Path, value))
			if len(errs) == 0 {
				t.Errorf("%s %s=%s: admitted", c.Plural, c.Path, raw)
				continue
			}
			if msg := errs.ToAggregate().Error(); !strings.Contains(msg, c.Path) {
				t.Errorf("%s %s=%s: rejection does not name the field: %s", c.Plural, c.Path, raw, msg)
			}
		}
	}
	if n < 60 {
		t.Fatalf("only %d cases", n)
	}
}

// TestSchemaAdmitsWhatTheOperatorReads guards against a pattern stricter
// than the operator: valid spellings stay admitted.
func TestSchemaAdmitsWhatTheOperatorReads(t *testing.T) {
	bc, rs, repo := loadCRD(t, "backupconfigurations"), loadCRD(t, "restoresessions"), loadCRD(t, "repositories")
	m := loadMalformed(t)
	docBC, docRS, docRepo := base(t, m, "backupconfigurations"), base(t, m, "restoresessions"), base(t, m, "repositories")
	for _, d := range []string{"0", "0s", "90s", "1.5h", "1h30m", ".5m", "300ms", "10us", "10µs"} {
		if errs := bc.validate(set(t, docBC, "spec.timeOut", d)); len(errs) > 0 {
			t.Errorf("timeOut %q: %v", d, errs)
		}
		if errs := rs.validate(set(t, docRS, "spec.timeOut", d)); len(errs) > 0 {
			t.Errorf("restore timeOut %q: %v", d, errs)
		}
	}
	for _, s := range []string{"0 2 * * *", "*/15 * * * *", "0 0 1 JAN MON-FRI", "@daily", "@daily-random", "@weekly-random", "@hourly-random", "@every 1h30m", "0 2 ? * *"} {
		if errs := bc.validate(set(t, docBC, "spec.schedule", s)); len(errs) > 0 {
			t.Errorf("schedule %q: %v", s, errs)
		}
		if _, err := ParseSchedule(ResolveSchedule("n", "a", s)); err != nil {
			t.Errorf("schedule %q admitted but refused by the operator: %v", s, err)
		}
	}
	for _, s := range []string{"", "@weekly-random", "0 3 * * 0"} {
		if errs := repo.validate(set(t, docRepo, "spec.maintenance.prune.schedule", s)); len(errs) > 0 {
			t.Errorf("maintenance schedule %q: %v", s, errs)
		}
	}
	for _, p := range []interface{}{int64(8080), "http"} {
		if errs := bc.validate(set(t, docBC, "spec.hooks.preBackup.httpGet.port", p)); len(errs) > 0 {
			t.Errorf("port %v: %v", p, errs)
		}
	}
	if errs := bc.validate(set(t, docBC, "spec.timeZone", "America/Argentina/Buenos_Aires")); len(errs) > 0 {
		t.Errorf("timeZone: %v", errs)
	}
	bs := loadCRD(t, "backupsessions")
	for _, g := range []string{"stow.dev", "stash.appscode.com"} { // Stash's manifests carry Stash's group
		if errs := bs.validate(set(t, base(t, m, "backupsessions"), "spec.invoker.apiGroup", g)); len(errs) > 0 {
			t.Errorf("invoker apiGroup %q: %v", g, errs)
		}
	}
}

// TestSchemaKeepsMountsOffStowsOwn: the CRDs refuse a local repository, or
// a target, mounted where Stow mounts its scratch and interim volumes (the
// target there was replaced by the empty interim volume, and its backup
// succeeded), and admit paths that merely look alike.
func TestSchemaKeepsMountsOffStowsOwn(t *testing.T) {
	repo := loadCRD(t, "repositories")
	local := `{"apiVersion":"stow.dev/v1beta1","kind":"Repository","metadata":{"name":"a"},
		"spec":{"backend":{"storageSecretName":"s","local":{"mountPath":"/repo","persistentVolumeClaim":{"claimName":"c"}}}}}`
	if errs := repo.validate(obj(t, local)); len(errs) > 0 {
		t.Fatalf("valid local repository refused: %v", errs)
	}
	for mp, bad := range map[string]bool{"/stow-tmp": true, "/stow-tmp/repo": true, "/stow-interim-volume": true, "/stow-interim-volume/r": true, "/": true,
		"/stow-tmpfs": false, "/stow-interim-volume-repo": false} {
		errs := repo.validate(set(t, local, "spec.backend.local.mountPath", mp))
		if got := len(errs) > 0; got != bad {
			t.Errorf("local mountPath %q: refused %v, want %v (%v)", mp, got, bad, errs)
		} else if bad && !strings.Contains(errs.ToAggregate().Error(), "spec.backend.local") {
			t.Errorf("local mountPath %q: the rejection does not name the field: %v", mp, errs)
		}
	}
	m := loadMalformed(t)
	for _, plural := range []string{"backupconfigurations", "restoresessions"} {
		v := loadCRD(t, plural)
		for _, mp := range []string{"/data", "/stow-data", "/stow-interim-volume-2", "/source/data"} {
			if errs := v.validate(set(t, base(t, m, plural), "spec.target.volumeMounts", []interface{}{map[string]interface{}{"name": "data", "mountPath": mp}})); len(errs) > 0 {
				t.Errorf("%s target mountPath %q refused: %v", plural, mp, errs)
			}
		}
	}
}

// TestSchemaRestoreTargetIsRefOrTemplates: a RestoreSession restores into
// the PVC target.ref names or into new PVCs from volumeClaimTemplates; the
// CRD refuses both at once, and admits each alone, as in Stash's clone-pvc
// guide (the StatefulSet one, e2e/clone_test.go).
func TestSchemaRestoreTargetIsRefOrTemplates(t *testing.T) {
	v := loadCRD(t, "restoresessions")
	tpl := func(name string) map[string]interface{} {
		return map[string]interface{}{"metadata": map[string]interface{}{"name": name},
			"spec": map[string]interface{}{"accessModes": []interface{}{"ReadWriteOnce"},
				"resources": map[string]interface{}{"requests": map[string]interface{}{"storage": "2Gi"}}}}
	}
	clone := `{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"restore-statefulset"},
		"spec":{"repository":{"name":"repo"},"rules":[{"paths":["/source/data","/source/config"]}],
		"target":{"replicas":3,"volumeMounts":[{"name":"restore-data-restore-demo","mountPath":"/source/data"},
			{"name":"restore-config-restore-demo","mountPath":"/source/config"}]}}}`
	templates := []interface{}{tpl("restore-data-restore-demo-${POD_ORDINAL}"), tpl("restore-config-restore-demo-${POD_ORDINAL}")}
	if errs := v.validate(set(t, clone, "spec.target.volumeClaimTemplates", templates)); len(errs) > 0 {
		t.Errorf("Stash's clone guide refused: %v", errs)
	}
	if errs := v.validate(set(t, clone, "spec.target.ref", map[string]interface{}{"name": "data"})); len(errs) > 0 {
		t.Errorf("ref alone refused: %v", errs)
	}
	both := set(t, clone, "spec.target.volumeClaimTemplates", templates)
	both["spec"].(map[string]interface{})["target"].(map[string]interface{})["ref"] = map[string]interface{}{"name": "data"}
	errs := v.validate(both)
	if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), "spec.target.volumeClaimTemplates: Invalid value") ||
		!strings.Contains(errs.ToAggregate().Error(), "must not be set together with spec.target.ref.name") {
		t.Errorf("ref and templates together: %v", errs)
	}
}

// TestSchemaBoundsWhatMultipliesWork: lists whose every item is a PVC, a
// container or a variable of every Job (and of every replica of a restore)
// are bounded at admission, with room for real use.
func TestSchemaBoundsWhatMultipliesWork(t *testing.T) {
	list := func(n int, item func(i int) interface{}) []interface{} {
		var out []interface{}
		for i := 0; i < n; i++ {
			out = append(out, item(i))
		}
		return out
	}
	tpl := func(i int) interface{} {
		return map[string]interface{}{"metadata": map[string]interface{}{"name": fmt.Sprintf("v%d-${POD_ORDINAL}", i)}}
	}
	step := func(i int) interface{} { return map[string]interface{}{"name": fmt.Sprintf("f%d", i)} }
	param := func(i int) interface{} { return map[string]interface{}{"name": fmt.Sprintf("P%d", i), "value": "v"} }
	rs := loadCRD(t, "restoresessions")
	restore := `{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"a"},
		"spec":{"repository":{"name":"r"},"target":{"replicas":100}}}`
	task := loadCRD(t, "tasks")
	taskDoc := `{"apiVersion":"stow.dev/v1beta1","kind":"Task","metadata":{"name":"t"},"spec":{"steps":[{"name":"f"}]}}`
	for _, c := range []struct {
		what  string
		v     *crdValidator
		doc   string
		path  string
		ok    interface{}
		bad   interface{}
		field string
	}{
		{"volumeClaimTemplates", rs, restore, "spec.target.volumeClaimTemplates", list(8, tpl), list(9, tpl), "spec.target.volumeClaimTemplates"},
		{"task steps", task, taskDoc, "spec.steps", list(32, step), list(33, step), "spec.steps"},
		{"step params", task, taskDoc, "spec.steps", []interface{}{map[string]interface{}{"name": "f", "params": list(64, param)}},
			[]interface{}{map[string]interface{}{"name": "f", "params": list(65, param)}}, "spec.steps[0].params"},
	} {
		if errs := c.v.validate(set(t, c.doc, c.path, c.ok)); len(errs) > 0 {
			t.Errorf("%s at the limit refused: %v", c.what, errs)
		}
		errs := c.v.validate(set(t, c.doc, c.path, c.bad))
		if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), c.field+": Too many") {
			t.Errorf("%s over the limit: %v", c.what, errs)
		}
	}
}
