package version

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestLabelIsAValidLabelValue(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	for in, want := range map[string]string{
		"dev":                          "dev",
		"v0.3.0":                       "v0.3.0",
		"v0.3.0-4-gabc1234-dirty":      "v0.3.0-4-gabc1234-dirty",
		"v1.0.0+build.7":               "v1.0.0_build.7",
		"":                             "dev",
		"-weird-":                      "weird",
		strings.Repeat("a", 70) + "-x": strings.Repeat("a", 63),
	} {
		Version = in
		got := Label()
		if got != want {
			t.Errorf("Label() of %q = %q, want %q", in, got, want)
		}
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("Label() of %q = %q is not a label value: %v", in, got, errs)
		}
	}
}

func TestStringNamesProgramAndVersion(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.9.9"
	if s := String("stow"); !strings.HasPrefix(s, "stow v9.9.9 ") {
		t.Errorf("String = %q", s)
	}
}
