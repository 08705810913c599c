// Command stow is Stow's in-Job runner and user CLI.
//
// In a backup or restore Job it runs the steps of the built-in Tasks
// (backup-pvc, restore-pvc, update-status) and reports each as a
// pkg/jobresult.Result on the container's termination message. The trigger
// CronJob runs create-backupsession. Users run snapshots, backup and restore,
// which also work outside Kubernetes on a local path or an S3 URL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/internal/cli"
	"github.com/stowhq/stow/pkg/version"
)

// command is one stow subcommand.
type command struct {
	name  string
	short string
	long  string
	// flags registers the command's flags and returns its run function,
	// called with the positional arguments after parsing.
	flags func(fs *pflag.FlagSet) func(ctx context.Context, args []string) error
}

// noArgs is the run function of a command that takes no positional
// arguments: any is a usage error, otherwise run runs.
func noArgs(run func(context.Context) error) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usageError("unexpected arguments %q", args)
		}
		return run(ctx)
	}
}

var commands = []command{
	backupPVCCommand,
	restorePVCCommand,
	updateStatusCommand,
	maintainCommand,
	wipeCommand,
	createBackupSessionCommand,
	runHookCommand,
	snapshotsCommand,
	backupCommand,
	restoreCommand,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code other than 1 (2 is a usage error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// run executes one stow invocation and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Fprintln(stdout, version.String("stow"))
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			args = []string{args[1], "--help"}
		} else {
			printUsage(stdout)
			if len(args) == 0 {
				return 2
			}
			return 0
		}
	}
	cmd, runFn, fs, code := cli.Parse("stow", commands, func(c command) string { return c.name }, args, stderr,
		func(c command, fs *pflag.FlagSet) func(context.Context, []string) error { return c.flags(fs) },
		func(c command, fs *pflag.FlagSet) {
			fmt.Fprintf(stdout, "Usage: stow %s [flags]\n\n%s\n\nFlags:\n%s", c.name, strings.TrimSpace(c.long), fs.FlagUsages())
		})
	if code >= 0 {
		return code
	}
	if isJobCommand(cmd.name) {
		// The first line of every Job container's log: which build ran it.
		logger.Printf("%s: %s", version.String("stow"), cmd.name)
	}
	if err := runFn(ctx, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "stow %s: %s\n", cmd.name, oneLine(err.Error()))
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `stow is Stow's Job runner and command-line tool.

Usage: stow <command> [flags]     (stow <command> --help for its flags)
       stow --version

In-Job commands (run by the operator's Jobs and CronJobs):
`)
	byGroup := func(inJob bool) {
		var lines []string
		for _, c := range commands {
			if isJobCommand(c.name) == inJob {
				lines = append(lines, fmt.Sprintf("  %-22s %s", c.name, c.short))
			}
		}
		sort.Strings(lines)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	byGroup(true)
	fmt.Fprint(w, `
User commands (also outside Kubernetes; --repo is a path or a restic URL such
as s3:http://127.0.0.1:9000/bucket with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
in the environment):
`)
	byGroup(false)
}

func isJobCommand(name string) bool {
	switch name {
	case "backup-pvc", "restore-pvc", "update-status", "maintain", "wipe", "create-backupsession", "run-hook":
		return true
	}
	return false
}

// oneLine keeps the first line of a message: the contract for a failed step.
func oneLine(s string) string { return cli.OneLine(s) }
