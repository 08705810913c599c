package hook

import (
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func renderBody(body string) (string, error) {
	out, err := Render(v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{Body: body}}, summary("Failed", "boom"))
	if err != nil {
		return "", err
	}
	return out.HTTPPost.Body, nil
}

// Templates run inside the operator: what would read its environment, reach
// the network from it, recurse, or spend unbounded memory or CPU fails the
// hook with an error instead, quickly.
func TestTemplatesRunUnderLimits(t *testing.T) {
	t.Setenv("STOW_SECRET_IN_OPERATOR_ENV", "leaked")
	for name, body := range map[string]string{
		"env":             `{{ env "STOW_SECRET_IN_OPERATOR_ENV" }}`,
		"expandenv":       `{{ expandenv "$STOW_SECRET_IN_OPERATOR_ENV" }}`,
		"dns":             `{{ getHostByName "example.com" }}`,
		"keygen":          `{{ genPrivateKey "rsa" }}`,
		"until":           `{{ range until 100000000 }}x{{ end }}`,
		"repeat":          `{{ repeat 100000000 "x" }}`,
		"indent":          `{{ indent 100000000 "x" }}`,
		"range over int":  `{{ range 1000000000 }}{{ end }}`,
		"range via dict":  `{{ $d := dict "n" (mul 100000 100000) }}{{ range $d.n }}{{ end }}`,
		"nested ranges":   `{{ range 5000 }}{{ range 5000 }}{{ end }}{{ end }}`,
		"recursion":       `{{ define "a" }}{{ template "a" . }}{{ template "a" . }}{{ end }}{{ template "a" . }}`,
		"doubling printf": `{{ $a := "0123456789abcdef" }}` + strings.Repeat(`{{ $a = printf "%s%s" $a $a }}`, 40) + `{{ len $a }}`,
		"doubling cat":    `{{ $a := "0123456789abcdef" }}` + strings.Repeat(`{{ $a = cat $a $a }}`, 40),
		"replace blowup":  `{{ $a := "0123456789abcdef" }}` + strings.Repeat(`{{ $a = replace "" $a $a }}`, 10),
		"printf width":    `{{ printf "%1000000d%1000000d%1000000d" 1 2 3 }}`,
		"printf star":     `{{ printf "%*d" 1000000 1 }}`,
		"join blowup":     `{{ $a := "0123456789abcdef" }}` + strings.Repeat(`{{ $a = join $a (splitList "" $a) }}`, 10),
		"regex blowup":    `{{ $a := "0123456789abcdef" }}` + strings.Repeat(`{{ $a = regexReplaceAll "(.+)" $a "${1}${1}${1}${1}" }}`, 10),
		"dict doubling":   `{{ $d := dict "a" "0123456789abcdef" }}` + strings.Repeat(`{{ $d = dict "a" $d "b" $d }}`, 30) + `{{ toJson $d }}`,
		"output":          `{{ range 9000 }}0123456789{{ end }}`,
		"long template":   strings.Repeat("{{ .Name }}", maxTemplate/10),
	} {
		start := time.Now()
		out, err := renderBody(body)
		if err == nil {
			t.Errorf("%s: rendered %d bytes (%.40q...), want an error", name, len(out), out)
			continue
		}
		if !strings.Contains(err.Error(), "template of httpPost.body") {
			t.Errorf("%s: error %q does not name the field", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v to fail", name, d)
		}
	}
}

// The limits leave what hook authors write alone: Stash's guides, ranges
// over the snapshots, string helpers, conditionals.
func TestTemplatesWithinLimitsRender(t *testing.T) {
	for body, want := range map[string]string{
		`{{ range .Snapshots }}{{ .Name }} {{ .TotalSize }};{{ end }}`:           "3f2a1b0c 1.2 MiB;",
		`{{ range $i, $s := .Snapshots }}{{ $i }}={{ $s.Path }}{{ end }}`:        "0=/stow-data",
		`{{ if eq .Status.Phase "Failed" }}{{ .Status.Error | upper }}{{ end }}`: "BOOM",
		`{{ printf "%s/%s" .Namespace .Target.Name | quote }}`:                   `"demo/db-data"`,
		`{{ range 3 }}.{{ end }}{{ len (list 1 2 3) }}`:                          "...3",
		`{{ printf "%5.1f%% %[1]v %-3s|" 99.44 "a" }}`:                           " 99.4% 99.44 a  |",
		`{{ replace "-" "_" .Invoker.Name }} {{ join "," (list "a" "b") }}`:      "db_backup a,b",
		`{{ .Invoker.Name | trunc 2 }}{{ default "x" "" }}{{ html "<a>" }}`:      "dbx&lt;a&gt;",
	} {
		got, err := renderBody(body)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", body, got, err, want)
		}
	}
}
