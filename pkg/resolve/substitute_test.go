package resolve

import (
	"encoding/json"
	"testing"
)

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": "", "B_2": "b"}
	tests := []struct{ in, want string }{
		{"${A}", "a"},
		{"x-${A}-${B_2}-y", "x-a-b-y"},
		{"${UNSET}", ""},
		{"${UNSET:=d}", "d"},
		{"${A:=d}", "a"},
		{"${EMPTY:=d}", "d"},
		{"${EMPTY}", ""},
		{"${UNSET:=}", ""},
		{"${UNSET:=${A}}", "a"},
		{"${UNSET:=pre-${UNSET2:=z}}", "pre-z"},
		{"${UNSET:=/stow-tmp/output}", "/stow-tmp/output"},
		{"$A and $$ stay", "$A and $$ stay"},
		{"${1BAD} ${not valid}", "${1BAD} ${not valid}"},
		{"unterminated ${A", "unterminated ${A"},
		{"no vars", "no vars"},
		{"${A}${A}", "aa"},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in, vars); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubstituteIntoIsJSONSafe(t *testing.T) {
	type doc struct {
		Args []string `json:"args"`
	}
	in := doc{Args: []string{"--x=${V}", "--y=${U:=d\"q}", "--z=${W}"}}
	vars := map[string]string{"V": `a"b\c`, "W": "}\n{\"injected\":true"}
	var out doc
	if err := substituteInto(&in, &out, vars, "test"); err != nil {
		t.Fatalf("substituteInto: %v", err)
	}
	want := []string{`--x=a"b\c`, `--y=d"q`, "--z=}\n{\"injected\":true"}
	got, _ := json.Marshal(out.Args)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("args = %s, want %s", got, exp)
	}
}
