package v1beta1

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
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
