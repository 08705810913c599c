package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParse(t *testing.T) {
	type cmd struct{ name string }
	cmds := []cmd{{"a"}, {"b"}}
	var flag string
	parse := func(args ...string) (cmd, string, int, string) {
		var stderr, usage bytes.Buffer
		c, run, _, code := Parse("tool", cmds, func(c cmd) string { return c.name }, args, &stderr,
			func(c cmd, fs *pflag.FlagSet) string { fs.StringVar(&flag, "x", "", ""); return "run " + c.name },
			func(c cmd, fs *pflag.FlagSet) { usage.WriteString("usage of " + c.name) })
		return c, run, code, stderr.String() + usage.String()
	}
	if c, run, code, out := parse("b", "--x", "1"); c.name != "b" || run != "run b" || code != -1 || flag != "1" || out != "" {
		t.Errorf("b --x 1: %v %q %d %q %q", c, run, code, flag, out)
	}
	if _, _, code, out := parse("c"); code != 2 || !strings.Contains(out, `tool: unknown command "c" (see tool --help)`) {
		t.Errorf("unknown command: %d %q", code, out)
	}
	if _, _, code, out := parse("a", "--y"); code != 2 || !strings.Contains(out, "tool a: unknown flag: --y") {
		t.Errorf("bad flag: %d %q", code, out)
	}
	if _, _, code, out := parse("a", "--help"); code != 0 || out != "usage of a" {
		t.Errorf("--help: %d %q", code, out)
	}
	if got := OneLine("  first\nsecond\n"); got != "first" {
		t.Errorf("OneLine = %q", got)
	}
}
