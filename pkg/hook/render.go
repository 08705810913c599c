package hook

import (
	"bytes"
	"fmt"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Ref names an object in a summary (Stash's spelling: ApiVersion).
type Ref struct {
	ApiVersion string //nolint:revive // Stash's templates spell it so
	Kind       string
	Name       string
}

// Status is the session's state a hook sees.
type Status struct {
	// Phase: Running in a pre hook; Succeeded or Failed in a post hook.
	Phase string
	// Duration is the session's duration so far.
	Duration string
	// Error is why the session failed ("" unless Phase is Failed).
	Error string
}

// Summary is the data a hook's templates are rendered over: Stash's
// session summary, plus the snapshots the backup took (a Stow extension).
type Summary struct {
	Name      string
	Namespace string
	Invoker   Ref
	Target    Ref
	Status    Status
	Snapshots []v1beta1.SnapshotStats
}

// Render returns h with its templated fields rendered over s: the
// httpGet/httpPost path and header values, the httpPost body and form
// values, and the exec command's arguments. The error names the field.
func Render(h v1beta1.Handler, s Summary) (v1beta1.Handler, error) {
	out := *h.DeepCopy()
	r := renderer{data: s, sandbox: newSandbox()}
	if g := out.HTTPGet; g != nil {
		r.action(g, "httpGet")
	}
	if p := out.HTTPPost; p != nil {
		r.action(&p.HTTPGetAction, "httpPost")
		p.Body = r.field(p.Body, "httpPost.body")
		for i := range p.Form {
			for j := range p.Form[i].Values {
				p.Form[i].Values[j] = r.field(p.Form[i].Values[j], fmt.Sprintf("httpPost.form[%s].values[%d]", p.Form[i].Key, j))
			}
		}
	}
	if e := out.Exec; e != nil {
		for i := range e.Command {
			e.Command[i] = r.field(e.Command[i], fmt.Sprintf("exec.command[%d]", i))
		}
	}
	if r.err != nil {
		return v1beta1.Handler{}, r.err
	}
	return out, nil
}

type renderer struct {
	data    Summary
	sandbox *sandbox
	err     error
}

func (r *renderer) action(a *v1beta1.HTTPGetAction, what string) {
	a.Path = r.field(a.Path, what+".path")
	for i := range a.HTTPHeaders {
		a.HTTPHeaders[i].Value = r.field(a.HTTPHeaders[i].Value, fmt.Sprintf("%s.httpHeaders[%s]", what, a.HTTPHeaders[i].Name))
	}
}

// field renders one template; after the first error it renders nothing.
func (r *renderer) field(text, what string) string {
	if r.err != nil || !bytes.Contains([]byte(text), []byte("{{")) {
		return text
	}
	t, err := r.sandbox.parse(what, text)
	if err != nil {
		r.err = fmt.Errorf("template of %s: %v", what, err)
		return text
	}
	var b bytes.Buffer
	if err := t.Execute(&limitedWriter{w: &b}, r.data); err != nil {
		r.err = fmt.Errorf("template of %s: %v", what, err)
		return text
	}
	return b.String()
}
