package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/trigger"
)

var triggerCommand = command{
	name:  "trigger",
	args:  "BACKUPCONFIGURATION",
	short: "back up now: create a BackupSession, as the schedule does (runs even when paused)",
	flags: func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
		wait := fs.Bool("wait", false, "wait for the session to end; exit 1 unless it Succeeded")
		timeout := fs.Duration("timeout", 30*time.Minute, "how long --wait waits")
		return func(ctx context.Context, e *env, args []string) error {
			name, err := oneArg(args, "BackupConfiguration name")
			if err != nil {
				return err
			}
			if err := positive("--timeout", *timeout); err != nil {
				return err
			}
			bs, err := trigger.Create(ctx, e.stow, e.namespace, name, e.now())
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%v (a session of this second exists; try again in a second)", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "backupsession/%s created\n", bs.Name)
			if !*wait {
				return nil
			}
			return waitBackupSession(ctx, e, bs.Name, *timeout)
		}
	},
}

// waitBackupSession waits until session name ends and reports how.
func waitBackupSession(ctx context.Context, e *env, name string, timeout time.Duration) error {
	return waitSession(ctx, e, "backupsession", name, timeout,
		func(ctx context.Context) (*v1beta1.BackupSession, error) {
			return e.stow.StowV1beta1().BackupSessions(e.namespace).Get(ctx, name, metav1.GetOptions{})
		},
		func(bs *v1beta1.BackupSession) sessionEnd {
			switch p := bs.Status.Phase; p {
			case v1beta1.BackupSessionSucceeded, v1beta1.BackupSessionFailed, v1beta1.BackupSessionSkipped:
				return sessionEnd{phase: string(p), ended: true, succeeded: p == v1beta1.BackupSessionSucceeded, reason: bs.Status.Reason, duration: bs.Status.SessionDuration}
			default:
				return sessionEnd{phase: string(p)}
			}
		})
}

// sessionEnd is what waitSession reads of a session.
type sessionEnd struct {
	phase            string
	ended, succeeded bool
	reason, duration string
}

// waitSession waits until the session get reads has ended (end tells), and
// reports how: an error unless it succeeded.
func waitSession[T any](ctx context.Context, e *env, kind, name string, timeout time.Duration,
	get func(context.Context) (T, error), end func(T) sessionEnd) error {
	var last sessionEnd
	err := waitFor(ctx, e, timeout, func(ctx context.Context) (bool, error) {
		s, err := get(ctx)
		if err != nil {
			return false, err
		}
		last = end(s)
		return last.ended, nil
	})
	if err != nil {
		return fmt.Errorf("%s/%s (phase %q): %v", kind, name, last.phase, err)
	}
	if !last.succeeded {
		return fmt.Errorf("%s/%s %s: %s", kind, name, last.phase, last.reason)
	}
	fmt.Fprintf(e.out, "%s/%s Succeeded in %s\n", kind, name, last.duration)
	return nil
}

// waitFor re-evaluates done every e.poll until it is true, fails, or timeout
// passes: the state is read from the API server, never assumed after a delay.
func waitFor(ctx context.Context, e *env, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(e.poll)
	defer t.Stop()
	for {
		ok, err := done(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done after %s", timeout)
		case <-t.C:
		}
	}
}

func pauseCommandFor(paused bool) command {
	c := command{name: "resume", args: "BACKUPCONFIGURATION...", short: "resume scheduled backups (spec.paused=false)"}
	if paused {
		c = command{name: "pause", args: "BACKUPCONFIGURATION...", short: "suspend scheduled backups (spec.paused=true); sessions created by hand still run"}
	}
	c.flags = func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) == 0 {
				return usagef("name at least one BackupConfiguration")
			}
			patch := []byte(fmt.Sprintf(`{"spec":{"paused":%t}}`, paused))
			for _, name := range args {
				if _, err := e.stow.StowV1beta1().BackupConfigurations(e.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					return fmt.Errorf("backupconfiguration/%s: %v", name, err)
				}
				fmt.Fprintf(e.out, "backupconfiguration/%s %sd\n", name, c.name)
			}
			return nil
		}
	}
	return c
}

var (
	pauseCommand  = pauseCommandFor(true)
	resumeCommand = pauseCommandFor(false)
)
