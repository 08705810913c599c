// Package resolve turns a Task and its Functions into the Job that runs a
// BackupSession or RestoreSession: it computes the ${VAR} variables (vars.go),
// substitutes them into the Task and Function templates, and builds the pod.
package resolve

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Substitute replaces ${NAME} with vars[NAME] (empty when unset) and
// ${NAME:=default} with vars[NAME], or default when NAME is unset or empty
// (the shell's and envsubst's ":=" rule). A default may itself contain
// ${...} references. Anything else, including a bare $NAME or a "${" not
// followed by a valid name, is kept literally so that shell snippets in hook
// commands survive.
func Substitute(in string, vars map[string]string) string {
	return substitute(in, vars, func(s string) string { return s })
}

// substituteJSON is Substitute for a JSON document: values are escaped as JSON
// string content, so a value holding a quote or a backslash cannot break (or
// inject into) the document. Defaults come from the document itself and are
// already escaped.
func substituteJSON(in string, vars map[string]string) string {
	return substitute(in, vars, jsonEscape)
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func substitute(in string, vars map[string]string, escape func(string) string) string {
	if !strings.Contains(in, "${") {
		return in
	}
	var out strings.Builder
	for i := 0; i < len(in); {
		if in[i] != '$' || i+1 >= len(in) || in[i+1] != '{' {
			out.WriteByte(in[i])
			i++
			continue
		}
		end := closingBrace(in, i+2)
		if end < 0 {
			out.WriteString(in[i:])
			break
		}
		expr := in[i+2 : end]
		name, def, hasDef := strings.Cut(expr, ":=")
		if !validName(name) {
			out.WriteString(in[i : end+1])
			i = end + 1
			continue
		}
		v, ok := vars[name]
		switch {
		case ok && (v != "" || !hasDef):
			out.WriteString(escape(v))
		case hasDef:
			out.WriteString(substitute(def, vars, escape))
		}
		i = end + 1
	}
	return out.String()
}

// closingBrace returns the index of the '}' closing a "${" whose body starts
// at from, honouring nested "${...}", or -1.
func closingBrace(s string, from int) int {
	depth := 1
	for j := from; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// substituteInto renders obj as JSON, substitutes vars and decodes the result
// into out (a pointer to a value of obj's type).
func substituteInto(obj, out any, vars map[string]string, what string) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: encode: %v", what, err)
	}
	if err := json.Unmarshal([]byte(substituteJSON(string(b), vars)), out); err != nil {
		return fmt.Errorf("%s: after variable substitution: %v", what, err)
	}
	return nil
}
