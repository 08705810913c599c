package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// The repository commands ask the operator for a maintenance task now with
// the Repository's request annotation (v1beta1.MaintenanceRequestAnnotation):
// its maintenance Job runs the task in the cluster with the Repository's
// credentials, and status.maintenance.<task> records the answer. Unlock is
// restic's safe unlock: it removes only stale locks (those of Stow's pods
// that no longer run, or older than restic's 30 minutes) and keeps the rest.
var (
	unlockCommand = maintenanceCommand(v1beta1.MaintenanceUnlock, "remove the repository's stale restic locks (a maintenance Job; live locks are kept)")
	checkCommand  = maintenanceCommand(v1beta1.MaintenanceCheck, "check the repository's integrity now (restic check in a maintenance Job)")
)

func maintenanceCommand(task, short string) command {
	return command{
		name:  task,
		args:  "REPOSITORY",
		short: short,
		flags: func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
			wait := fs.Bool("wait", false, "wait for the operator's answer; exit 1 if the task failed")
			timeout := fs.Duration("timeout", 30*time.Minute, "how long --wait waits (the task may first wait for running backups)")
			return func(ctx context.Context, e *env, args []string) error {
				name, err := oneArg(args, "Repository name")
				if err != nil {
					return err
				}
				if err := positive("--timeout", *timeout); err != nil {
					return err
				}
				value, err := requestMaintenance(ctx, e, name, task)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "repository/%s: %s requested (%s=%s)\n", name, task, v1beta1.MaintenanceRequestAnnotation(task), value)
				if !*wait {
					return nil
				}
				return waitMaintenance(ctx, e, name, task, value, *timeout)
			}
		},
	}
}

// requestMaintenance sets the request annotation of task on Repository name
// to a value it has not had (the operator runs the task once per new value)
// and returns it.
func requestMaintenance(ctx context.Context, e *env, name, task string) (string, error) {
	repos := e.stow.StowV1beta1().Repositories(e.namespace)
	repo, err := repos.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("repository %s: %v", name, err)
	}
	key := v1beta1.MaintenanceRequestAnnotation(task)
	now := e.now().Unix()
	value := strconv.FormatInt(now, 10)
	if old := repo.Annotations[key]; old != "" {
		if n, err := strconv.ParseInt(old, 10, 64); err == nil && n >= now {
			value = strconv.FormatInt(n+1, 10)
		}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return "", err
	}
	if _, err := repos.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("repository %s: %v", name, err)
	}
	return value, nil
}

func waitMaintenance(ctx context.Context, e *env, name, task, value string, timeout time.Duration) error {
	var last *v1beta1.MaintenanceRun
	err := waitFor(ctx, e, timeout, func(ctx context.Context) (bool, error) {
		repo, err := e.stow.StowV1beta1().Repositories(e.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = repo.Status.Maintenance.Run(task)
		return last != nil && last.Request == value, nil
	})
	if err != nil {
		return fmt.Errorf("repository/%s %s: %v (see kubectl describe repository %s)", name, task, err, name)
	}
	if last.Succeeded == nil || !*last.Succeeded {
		return fmt.Errorf("repository/%s %s failed: %s", name, task, last.Message)
	}
	fmt.Fprintf(e.out, "repository/%s %s: %s\n", name, task, last.Message)
	return nil
}
