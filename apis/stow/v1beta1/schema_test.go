package v1beta1

import (
	"context"
	"encoding/json"
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

// obj parses a JSON document the way kube-apiserver does (numbers as int64
// or float64).
func obj(t *testing.T, doc string) map[string]interface{} {
	t.Helper()
	var m map[string]interface{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return m
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

const (
	docBC = `{"apiVersion":"stow.dev/v1beta1","kind":"BackupConfiguration","metadata":{"name":"a","namespace":"n"},
		"spec":{"schedule":"0 2 * * *","repository":{"name":"r"},"target":{"ref":{"name":"data"}},
		"retentionPolicy":{"name":"keep","keepLast":5,"prune":true},"timeOut":"2h",
		"retryConfig":{"maxRetry":3,"delay":"5m"}}}`
	docRS = `{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"a","namespace":"n"},
		"spec":{"repository":{"name":"r"},"target":{"ref":{"name":"data"}},"timeOut":"1h30m"}}`
	docBS = `{"apiVersion":"stow.dev/v1beta1","kind":"BackupSession","metadata":{"name":"a","namespace":"n"},
		"spec":{"invoker":{"name":"a"},"retryLeft":2}}`
	docRepo = `{"apiVersion":"stow.dev/v1beta1","kind":"Repository","metadata":{"name":"a","namespace":"n"},
		"spec":{"backend":{"storageSecretName":"s","gcs":{"bucket":"b"}},
		"maintenance":{"prune":{"schedule":"@weekly-random"},"check":{"schedule":"0 3 * * 0","readDataSubset":"10%"}}}}`
	docSnap = `{"apiVersion":"stow.dev/v1beta1","kind":"Snapshot","metadata":{"name":"a","namespace":"n"},
		"spec":{"id":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","time":"2026-01-02T03:04:05Z",
		"repository":{"name":"r"},"invoker":{"name":"a"},"target":{"name":"data"},"totalFiles":3}}`
)

// schemaCases are malformed values of every field the operator decodes or
// parses; each must be refused at admission, naming the field. The e2e test
// TestSchemaRejectsMalformedFields sends the same cases to a real API server.
type schemaCase struct {
	plural, base, path string
	value              interface{}
}

func schemaCases() []schemaCase {
	var cs []schemaCase
	add := func(plural, base, path string, values ...interface{}) {
		for _, v := range values {
			cs = append(cs, schemaCase{plural, base, path, v})
		}
	}
	badDurations := []interface{}{"1 hour", "soon", "-5m", "10", "1h 30m", int64(5), "9999999999999999h", ""}
	add("backupconfigurations", docBC, "spec.timeOut", badDurations...)
	add("backupconfigurations", docBC, "spec.retryConfig.delay", badDurations...)
	add("backupconfigurations", docBC, "spec.retryConfig.maxRetry", int64(2147483647), int64(11), int64(-1), 1.5, "3")
	add("backupconfigurations", docBC, "spec.backupHistoryLimit", int64(2147483648), int64(-1), "1")
	add("backupconfigurations", docBC, "spec.schedule", "every day", "* * * *", "0 2 * * * *", "@often", "TZ=UTC 0 2 * * *", "", int64(5))
	add("backupconfigurations", docBC, "spec.timeZone", "Europe Paris", "$(date)")
	add("backupconfigurations", docBC, "spec.retentionPolicy.keepLast", int64(-1), 1e20, "5")
	add("backupconfigurations", docBC, "spec.hooks.preBackup.httpGet.port", int64(99999999999), int64(70000), int64(0), "Not A Name")
	add("backupconfigurations", docBC, "spec.tempDir.sizeLimit", "lots", "1 Gi")
	add("backupconfigurations", docBC, "spec.runtimeSettings.container.nice.adjustment", int64(99), int64(4294967296))
	add("backupconfigurations", docBC, "spec.runtimeSettings.container.resources.limits", map[string]interface{}{"memory": "much"})
	add("backupconfigurations", docBC, "spec.driver", "Kopia")
	add("backupconfigurations", docBC, "spec.paused", "yes")
	add("restoresessions", docRS, "spec.timeOut", badDurations...)
	add("restoresessions", docRS, "spec.target.replicas", int64(2147483648), int64(0))
	add("backupsessions", docBS, "spec.retryLeft", int64(1000000), int64(2147483648), int64(-1), int64(11))
	add("backupsessions", docBS, "spec.invoker.kind", "Deployment")
	add("repositories", docRepo, "spec.maintenance.prune.schedule", "sometimes", "61 * * * *x y")
	add("repositories", docRepo, "spec.maintenance.check.readDataSubset", "half")
	add("repositories", docRepo, "spec.backend.gcs.maxConnections", 1e20, int64(-1))
	add("snapshots", docSnap, "spec.totalFiles", 1e20)
	add("snapshots", docSnap, "spec.time", "yesterday", "2026-13-01T00:00:00Z")
	return cs
}

func TestSchemaRejectsMalformedFields(t *testing.T) {
	validators := map[string]*crdValidator{}
	for _, c := range schemaCases() {
		v := validators[c.plural]
		if v == nil {
			v = loadCRD(t, c.plural)
			validators[c.plural] = v
			if errs := v.validate(obj(t, c.base)); len(errs) > 0 {
				t.Fatalf("valid %s rejected: %v", c.plural, errs)
			}
		}
		errs := v.validate(set(t, c.base, c.path, c.value))
		b, _ := json.Marshal(c.value)
		if len(errs) == 0 {
			t.Errorf("%s %s=%s: admitted", c.plural, c.path, b)
			continue
		}
		if msg := errs.ToAggregate().Error(); !strings.Contains(msg, c.path) {
			t.Errorf("%s %s=%s: rejection does not name the field: %s", c.plural, c.path, b, msg)
		}
	}
}

// TestSchemaAdmitsWhatTheOperatorReads guards against a pattern stricter
// than the operator: valid spellings stay admitted.
func TestSchemaAdmitsWhatTheOperatorReads(t *testing.T) {
	bc, rs, repo := loadCRD(t, "backupconfigurations"), loadCRD(t, "restoresessions"), loadCRD(t, "repositories")
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
}
