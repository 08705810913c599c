package hook

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
)

// Templates are written by whoever may write a BackupConfiguration or
// RestoreSession and are rendered inside the operator, so they run under
// limits (docs/hooks.md, "Templates"): a function list without the
// environment, DNS, key generation or unbounded generators; no
// define/template (recursion); a budget on what functions return and on
// range iterations; and a bound on each field's text and output.
const (
	// maxTemplate is the longest template text of one field.
	maxTemplate = 8 << 10
	// maxOutput is the longest rendered text of one field.
	maxOutput = 64 << 10
	// maxValueBytes bounds the sum of what all function calls of one
	// Render return (strings by length, lists and maps by element).
	maxValueBytes = 1 << 20
	// maxIterations bounds the sum of range iterations of one Render.
	maxIterations = 10000
)

// allowedFuncs are sprig's functions whose cost is bounded by their
// arguments. Left out: env, expandenv (the operator's environment),
// getHostByName (DNS from the operator), key and certificate generation,
// bcrypt, htpasswd, derivePassword (seconds of CPU per call), and the
// generators whose size is an argument (until, untilStep, seq, repeat,
// indent, nindent, rand*, chunk).
var allowedFuncs = []string{
	// dates
	"ago", "date", "date_in_zone", "dateInZone", "date_modify", "dateModify", "mustDateModify", "must_date_modify",
	"duration", "durationRound", "htmlDate", "htmlDateInZone", "now", "toDate", "mustToDate", "unixEpoch",
	// strings
	"abbrev", "abbrevboth", "trunc", "trim", "trimAll", "trimall", "trimPrefix", "trimSuffix", "upper", "lower",
	"title", "untitle", "substr", "nospace", "initials", "swapcase", "snakecase", "camelcase", "kebabcase",
	"wrap", "contains", "hasPrefix", "hasSuffix", "quote", "squote", "cat", "replace", "plural",
	"split", "splitList", "splitn", "join", "sortAlpha", "toString", "toStrings",
	"sha1sum", "sha256sum", "sha512sum", "adler32sum", "b64enc", "b64dec", "b32enc", "b32dec", "uuidv4",
	"regexMatch", "mustRegexMatch", "regexFind", "mustRegexFind", "regexFindAll", "mustRegexFindAll",
	"regexReplaceAll", "mustRegexReplaceAll", "regexReplaceAllLiteral", "mustRegexReplaceAllLiteral",
	"regexSplit", "mustRegexSplit", "regexQuoteMeta", "urlParse", "urlJoin",
	"base", "dir", "clean", "ext", "isAbs", "semver", "semverCompare",
	// numbers
	"atoi", "int", "int64", "float64", "toDecimal", "add", "add1", "sub", "div", "mod", "mul", "max", "min",
	"biggest", "addf", "add1f", "subf", "divf", "mulf", "maxf", "minf", "ceil", "floor", "round", "randInt",
	// values, lists and dicts
	"default", "empty", "coalesce", "all", "any", "ternary", "fail", "typeOf", "typeIs", "typeIsLike", "kindOf", "kindIs",
	"deepEqual", "fromJson", "mustFromJson", "toJson", "mustToJson", "toPrettyJson", "mustToPrettyJson", "toRawJson", "mustToRawJson",
	"tuple", "list", "dict", "get", "hasKey", "pluck", "keys", "pick", "omit", "values", "dig",
	"append", "mustAppend", "prepend", "mustPrepend",
	"first", "mustFirst", "rest", "mustRest", "last", "mustLast", "initial", "mustInitial", "reverse", "mustReverse",
	"has", "mustHas", "slice", "mustSlice", "concat", "compact", "mustCompact",
}

// outputBound estimates, before the call, the output of the functions
// whose output can grow faster than their input; a call whose bound is
// past the budget is refused instead of run.
var outputBound = map[string]func(args []reflect.Value) int{
	// replace old new src
	"replace": func(a []reflect.Value) int {
		return boundReplace(str(a, 2), str(a, 1), strings.Count(str(a, 2), str(a, 0)))
	},
	// regexReplaceAll regex src repl: each match adds repl with each $
	// group at most the whole source.
	"regexReplaceAll":     regexBound,
	"mustRegexReplaceAll": regexBound,
	"regexReplaceAllLiteral": func(a []reflect.Value) int {
		return boundReplace(str(a, 1), str(a, 2), len(str(a, 1))+1)
	},
	"mustRegexReplaceAllLiteral": func(a []reflect.Value) int {
		return boundReplace(str(a, 1), str(a, 2), len(str(a, 1))+1)
	},
	// join sep list
	"join": func(a []reflect.Value) int {
		n := 0
		if len(a) > 1 {
			n = size(a[1], maxValueBytes+1)
		}
		return n * (1 + len(str(a, 0)))
	},
}

func regexBound(a []reflect.Value) int {
	src, repl := str(a, 1), str(a, 2)
	return boundReplace(src, repl+strings.Repeat(src, min(strings.Count(repl, "$"), 2)), len(src)+1)
}

// boundReplace is the length of src with n matches replaced by repl,
// saturated above the budget.
func boundReplace(src, repl string, n int) int {
	if n > 0 && len(repl) > maxValueBytes/n {
		return maxValueBytes + 1
	}
	return len(src) + n*len(repl)
}

// str is args[i] as a string ("" when it is not one).
func str(args []reflect.Value, i int) string {
	if i >= len(args) {
		return ""
	}
	v := args[i]
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.String {
		return v.String()
	}
	return ""
}

// rangeGuard is the function the sandbox puts at the end of every range
// pipeline, so the value ranged over is counted before it is walked.
const rangeGuard = "stowRangeGuard"

var (
	errBudget     = errors.New("template does too much work (limits: docs/hooks.md)")
	errIterations = fmt.Errorf("template ranges more than %d times in all", maxIterations)
	errOutput     = fmt.Errorf("rendered text is longer than %d bytes", maxOutput)
)

// sandbox holds one Render's budgets.
type sandbox struct {
	valueBytes int
	iterations int
	funcs      template.FuncMap
}

func newSandbox() *sandbox {
	s := &sandbox{funcs: template.FuncMap{}}
	all := sprig.TxtFuncMap()
	for _, name := range allowedFuncs {
		s.funcs[name] = s.metered(all[name], outputBound[name])
	}
	// text/template's own printers, metered the same way (a template
	// function of the same name takes precedence over the builtin).
	for name, fn := range map[string]any{
		"print": fmt.Sprint, "printf": printf, "println": fmt.Sprintln,
		"html": template.HTMLEscaper, "js": template.JSEscaper, "urlquery": template.URLQueryEscaper,
	} {
		s.funcs[name] = s.metered(fn, nil)
	}
	s.funcs[rangeGuard] = s.guardRange
	return s
}

// metered wraps fn so that what it returns is charged to the budget, and
// refuses a call whose bound (when fn has one) is past it.
func (s *sandbox) metered(fn any, bound func([]reflect.Value) int) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		if s.valueBytes > maxValueBytes || bound != nil && s.valueBytes+bound(args) > maxValueBytes {
			return failWith(t, errBudget)
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) > 0 {
			s.valueBytes += size(out[0], maxValueBytes+1-s.valueBytes)
			if s.valueBytes > maxValueBytes {
				return failWith(t, errBudget)
			}
		}
		return out
	}).Interface()
}

// failWith returns zero results of t with err in its error result, or
// panics with err when t has none (text/template turns a function's panic
// into the template's error).
func failWith(t reflect.Type, err error) []reflect.Value {
	out := make([]reflect.Value, t.NumOut())
	for i := range out {
		out[i] = reflect.Zero(t.Out(i))
	}
	if n := t.NumOut(); n == 2 && t.Out(1) == reflect.TypeFor[error]() {
		out[1] = reflect.ValueOf(&err).Elem()
		return out
	}
	panic(err)
}

// size is what a value costs, counted as far as limit: a string its
// length, a list or map the sizes of its elements (a value held twice
// counts twice, as printing it would print it twice), anything else 1.
func size(v reflect.Value, limit int) int {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 1
		}
		v = v.Elem()
	}
	n := 1
	switch v.Kind() {
	case reflect.String:
		n += v.Len()
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return n + v.Len()
		}
		for i := 0; i < v.Len() && n <= limit; i++ {
			n += size(v.Index(i), limit-n)
		}
	case reflect.Map:
		for it := v.MapRange(); n <= limit && it.Next(); {
			n += size(it.Key(), limit-n) + size(it.Value(), limit-n)
		}
	}
	return n
}

// printf is fmt.Sprintf without widths or precisions over four digits or
// taken from arguments (fmt allows a million per verb).
func printf(format string, args ...any) (string, error) {
	inVerb, digits := false, 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case !inVerb:
			inVerb, digits = c == '%', 0
		case c == '%' && digits == 0 && format[i-1] == '%':
			inVerb = false // %%
		case c == '*':
			return "", errors.New("printf: * widths are not allowed")
		case c >= '0' && c <= '9':
			if digits++; digits > 4 {
				return "", errors.New("printf: widths and precisions over 9999 are not allowed")
			}
		case strings.IndexByte(".+- #[]", c) >= 0:
			digits = 0
		default:
			inVerb = false
		}
	}
	return fmt.Sprintf(format, args...), nil
}

// guardRange charges a range's iterations before it runs and refuses what
// could run unbounded (channels, iterator functions).
func (s *sandbox) guardRange(v any) (any, error) {
	rv := reflect.ValueOf(v)
	n := 0
	switch rv.Kind() {
	case reflect.Invalid:
	case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
		n = rv.Len()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = int(max(rv.Int(), 0))
		if rv.Int() > maxIterations {
			return nil, errIterations
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() > maxIterations {
			return nil, errIterations
		}
		n = int(rv.Uint())
	default:
		return nil, fmt.Errorf("range over a %s is not allowed", rv.Kind())
	}
	s.iterations += n
	if s.iterations > maxIterations {
		return nil, errIterations
	}
	return v, nil
}

// parse parses one field's template under the sandbox's rules.
func (s *sandbox) parse(name, text string) (*template.Template, error) {
	if len(text) > maxTemplate {
		return nil, fmt.Errorf("template is longer than %d bytes", maxTemplate)
	}
	t, err := template.New(name).Funcs(s.funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("define and block are not allowed")
	}
	if err := s.guard(t.Root); err != nil {
		return nil, err
	}
	return t, nil
}

// guard refuses template calls and routes every range through rangeGuard.
func (s *sandbox) guard(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := s.guard(c); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("{{template %q}} is not allowed", n.Name)
	case *parse.IfNode:
		return s.guardBranch(&n.BranchNode)
	case *parse.WithNode:
		return s.guardBranch(&n.BranchNode)
	case *parse.RangeNode:
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
			NodeType: parse.NodeCommand,
			Args:     []parse.Node{parse.NewIdentifier(rangeGuard)},
		})
		return s.guardBranch(&n.BranchNode)
	}
	return nil
}

func (s *sandbox) guardBranch(b *parse.BranchNode) error {
	if err := s.guard(b.List); err != nil {
		return err
	}
	return s.guard(b.ElseList)
}

// limitedWriter fails a write that would take the output past maxOutput.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n+len(p) > maxOutput {
		return 0, errOutput
	}
	l.n += len(p)
	return l.w.Write(p)
}
