package v1beta1

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// TestGeneratedCRDs checks the controller-gen output a user applies: every
// kind is there with its scope, short names, status subresource and columns.
func TestGeneratedCRDs(t *testing.T) {
	want := map[string]struct {
		scope     apiextensionsv1.ResourceScope
		shortName string
		status    bool
		column    string
	}{
		"repositories":         {apiextensionsv1.NamespaceScoped, "repo", true, "Integrity"},
		"backupconfigurations": {apiextensionsv1.NamespaceScoped, "bc", true, "Phase"},
		"backupsessions":       {apiextensionsv1.NamespaceScoped, "bs", true, "Phase"},
		"restoresessions":      {apiextensionsv1.NamespaceScoped, "restore", true, "Phase"},
		"tasks":                {apiextensionsv1.ClusterScoped, "task", false, "Age"},
		"functions":            {apiextensionsv1.ClusterScoped, "fn", false, "Image"},
		"snapshots":            {apiextensionsv1.NamespaceScoped, "snap", false, "Time"},
	}
	files, err := filepath.Glob("../../../deploy/crds/*.yaml")
	if err != nil || len(files) != len(want) {
		t.Fatalf("want %d CRD files, found %v (%v)", len(want), files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		w, ok := want[crd.Spec.Names.Plural]
		if !ok {
			t.Fatalf("%s: unexpected CRD %s", f, crd.Name)
		}
		if crd.Spec.Group != GroupName || crd.Name != crd.Spec.Names.Plural+"."+GroupName {
			t.Errorf("%s: group/name %s %s", f, crd.Spec.Group, crd.Name)
		}
		if crd.Spec.Scope != w.scope {
			t.Errorf("%s: scope %s, want %s", f, crd.Spec.Scope, w.scope)
		}
		if len(crd.Spec.Names.ShortNames) == 0 || crd.Spec.Names.ShortNames[0] != w.shortName {
			t.Errorf("%s: short names %v, want %s", f, crd.Spec.Names.ShortNames, w.shortName)
		}
		if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1beta1" || !crd.Spec.Versions[0].Served || !crd.Spec.Versions[0].Storage {
			t.Fatalf("%s: versions %+v", f, crd.Spec.Versions)
		}
		v := crd.Spec.Versions[0]
		if (v.Subresources != nil && v.Subresources.Status != nil) != w.status {
			t.Errorf("%s: status subresource = %v, want %v", f, v.Subresources, w.status)
		}
		found := false
		for _, c := range v.AdditionalPrinterColumns {
			found = found || c.Name == w.column
		}
		if !found {
			t.Errorf("%s: printer column %q missing", f, w.column)
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil || len(v.Schema.OpenAPIV3Schema.Properties) == 0 {
			t.Errorf("%s: no schema", f)
		}
	}
}

// The limits kube-apiserver puts on a CRD's CEL rules when it is applied
// (k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation).
const (
	celStaticEstimatedCostLimit    = 10000000
	celStaticEstimatedCRDCostLimit = 100000000
)

// TestGeneratedCRDsCELCost compiles every CEL rule of the generated CRDs and
// checks its estimated cost, times the number of times it can run (the
// maxItems of the lists above it), as kube-apiserver does when the CRD is
// applied: a rule over a list without maxItems can exceed the limit, and
// the whole CRD is then refused.
func TestGeneratedCRDsCELCost(t *testing.T) {
	files, err := filepath.Glob("../../../deploy/crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	rules := 0
	for _, f := range files {
		plural := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "stow.dev_"), ".yaml")
		v := loadCRD(t, plural)
		var total uint64
		walkCEL(t, plural, v.ss, true, ptr.To[uint64](1), &total, &rules)
		if total > celStaticEstimatedCRDCostLimit {
			t.Errorf("%s: estimated cost of all rules %d exceeds %d", plural, total, celStaticEstimatedCRDCostLimit)
		}
	}
	if rules < 10 {
		t.Fatalf("only %d rules checked", rules)
	}
}

// walkCEL checks the rules of s and of the schemas below it; card is how
// many times s can occur in one object, nil when unbounded.
func walkCEL(t *testing.T, at string, s *structuralschema.Structural, root bool, card *uint64, total *uint64, rules *int) {
	t.Helper()
	if len(s.XValidations) > 0 {
		results, err := cel.Compile(s, model.SchemaDeclType(s, root || s.XEmbeddedResource), celPerCallLimit,
			environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()), cel.NewExpressionsEnvLoader())
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		for i, r := range results {
			*rules++
			if r.Error != nil {
				t.Errorf("%s rule %d: %v", at, i, r.Error)
				continue
			}
			n := r.MaxCardinality
			if card != nil {
				n = *card
			}
			cost := r.MaxCost * n
			if n != 0 && cost/n != r.MaxCost {
				cost = math.MaxUint64
			}
			if cost > celStaticEstimatedCostLimit {
				t.Errorf("%s rule %q: estimated cost %d exceeds %d (bound the lists and strings it reads)", at, s.XValidations[i].Rule, cost, celStaticEstimatedCostLimit)
			}
			*total += cost
		}
	}
	times := func(max *int64) *uint64 {
		if card == nil || max == nil {
			return nil
		}
		return ptr.To(*card * uint64(*max))
	}
	for name, p := range s.Properties {
		walkCEL(t, at+"."+name, &p, false, card, total, rules)
	}
	var maxItems, maxProperties *int64
	if vv := s.ValueValidation; vv != nil {
		maxItems, maxProperties = vv.MaxItems, vv.MaxProperties
	}
	if s.Items != nil {
		walkCEL(t, at+"[]", s.Items, false, times(maxItems), total, rules)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
		walkCEL(t, at+"{}", s.AdditionalProperties.Structural, false, times(maxProperties), total, rules)
	}
}
