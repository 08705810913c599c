// Package cli is the subcommand dispatch of Stow's two command-line tools
// (cmd/stow and cmd/kubectl-stow): the first argument names the command,
// the rest are its flags, and a mistake in either is said on stderr with
// exit code 2.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Parse picks, among cmds, the command args[0] names (name tells each
// command's name) and parses args[1:] into a flag set named prog+" "+name.
// setup registers the command's flags on it and returns the command's run
// function; usage prints the command's help (--help). code is -1 when the
// command is to run, else the exit code the invocation ends with: 2 for an
// unknown command or bad flags, 0 after --help.
func Parse[C, R any](prog string, cmds []C, name func(C) string, args []string, stderr io.Writer,
	setup func(C, *pflag.FlagSet) R, usage func(C, *pflag.FlagSet)) (cmd C, run R, fs *pflag.FlagSet, code int) {
	found := false
	for _, c := range cmds {
		if name(c) == args[0] {
			cmd, found = c, true
		}
	}
	if !found {
		fmt.Fprintf(stderr, "%s: unknown command %q (see %s --help)\n", prog, args[0], prog)
		return cmd, run, nil, 2
	}
	fs = pflag.NewFlagSet(prog+" "+name(cmd), pflag.ContinueOnError)
	fs.SetOutput(stderr)
	run = setup(cmd, fs)
	fs.Usage = func() { usage(cmd, fs) }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cmd, run, fs, 0
		}
		fmt.Fprintf(stderr, "%s %s: %v\n", prog, name(cmd), err)
		return cmd, run, fs, 2
	}
	return cmd, run, fs, -1
}

// OneLine keeps the first line of a message: what a failed command or Job
// step reports.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
