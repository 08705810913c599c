// Command kubectl-stow is the kubectl plugin `kubectl stow`: it triggers,
// pauses and resumes backups, lists the Snapshot records the operator keeps
// in the cluster, starts restores from them, asks the operator for a
// repository unlock or check, and describes a configuration's recent
// sessions. It only reads and writes Stow objects with the user's own
// kubeconfig and RBAC; it never needs repository credentials, since every
// action is carried out by the operator's Jobs in the cluster.
//
// Install: put kubectl-stow on $PATH (krew-style name), then `kubectl stow`.
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
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/internal/cli"
	"github.com/stowhq/stow/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, newClients)
	stop()
	os.Exit(code)
}

// env is what a command runs with: the clients of the user's kubeconfig,
// the namespace (-n, else the kubeconfig context's) and the output.
type env struct {
	stow      versioned.Interface
	kube      kubernetes.Interface
	namespace string
	out       io.Writer
	now       func() time.Time
	// poll is how often --wait re-reads the object it waits on.
	poll time.Duration
}

// command is one `kubectl stow` subcommand.
type command struct {
	name  string
	args  string // usage of the positional arguments
	short string
	// flags registers the command's flags and returns its run function.
	flags func(fs *pflag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	triggerCommand,
	pauseCommand,
	resumeCommand,
	snapshotsCommand,
	restoreCommand,
	unlockCommand,
	checkCommand,
	describeCommand,
}

// kubeFlags are kubectl's connection flags the plugin honours.
type kubeFlags struct {
	kubeconfig, context, namespace string
}

// clientsFunc builds the clients; tests replace it by fake clientsets.
type clientsFunc func(kf kubeFlags) (versioned.Interface, kubernetes.Interface, string, error)

func newClients(kf kubeFlags) (versioned.Interface, kubernetes.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kf.kubeconfig != "" {
		rules.ExplicitPath = kf.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: kf.context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, nil, "", fmt.Errorf("kubeconfig: %v", err)
	}
	cfg.UserAgent = "kubectl-stow/" + version.Version
	ns := kf.namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, nil, "", fmt.Errorf("kubeconfig namespace: %v", err)
		}
	}
	stow, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	return stow, kube, ns, nil
}

// usageErr is a mistake on the command line: exit code 2.
type usageErr struct{ error }

func usagef(format string, args ...any) error { return usageErr{fmt.Errorf(format, args...)} }

// positive refuses a flag's duration that is not positive, before anything
// is created (a --wait with it could only time out at once).
func positive(flag string, d time.Duration) error {
	if d <= 0 {
		return usagef("%s must be positive, not %s", flag, d)
	}
	return nil
}

// run executes one invocation and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, clients clientsFunc) int {
	return runWith(ctx, args, stdout, stderr, clients, time.Now, 2*time.Second)
}

// runWith is run with the clock and the --wait poll interval given.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, clients clientsFunc, now func() time.Time, poll time.Duration) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, version.String("kubectl-stow"))
		return 0
	}
	var kf kubeFlags
	cmd, runFn, fs, code := cli.Parse("kubectl stow", commands, func(c command) string { return c.name }, args, stderr,
		func(c command, fs *pflag.FlagSet) func(context.Context, *env, []string) error {
			fs.StringVar(&kf.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
			fs.StringVar(&kf.context, "context", "", "kubeconfig context to use")
			fs.StringVarP(&kf.namespace, "namespace", "n", "", "namespace (default: the context's)")
			return c.flags(fs)
		},
		func(c command, fs *pflag.FlagSet) {
			fmt.Fprintf(stdout, "Usage: kubectl stow %s %s\n\n%s\n\nFlags:\n%s", c.name, c.args, c.short, fs.FlagUsages())
		})
	if code >= 0 {
		return code
	}
	err := func() error {
		stow, kube, ns, err := clients(kf)
		if err != nil {
			return err
		}
		return runFn(ctx, &env{stow: stow, kube: kube, namespace: ns, out: stdout, now: now, poll: poll}, fs.Args())
	}()
	if err != nil {
		fmt.Fprintf(stderr, "kubectl stow %s: %s\n", cmd.name, oneLine(err.Error()))
		var ue usageErr
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `kubectl stow drives Stow backups with your kubeconfig (no repository credentials).

Usage: kubectl stow <command> [flags]   (kubectl stow <command> --help for its flags)

Commands:
`)
	var lines []string
	for _, c := range commands {
		lines = append(lines, fmt.Sprintf("  %-10s %-28s %s", c.name, c.args, c.short))
	}
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	fmt.Fprintln(w, "\nEvery command takes -n/--namespace, --context and --kubeconfig.")
}

// oneLine keeps the first line of a message.
func oneLine(s string) string { return cli.OneLine(s) }

// oneArg checks that exactly one positional argument, what, was given.
func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usagef("want one argument, the %s; got %d", what, len(args))
	}
	return args[0], nil
}
