package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/hook"
	"github.com/stowhq/stow/pkg/jobresult"
)

var runHookCommand = command{
	name:  "run-hook",
	short: "run one HTTP or TCP backup/restore hook (hook Jobs)",
	long: `Runs the handler given by --handler (JSON of an httpGet, httpPost or
tcpSocket handler, already rendered by the operator) once, within --timeout.
An HTTP hook succeeds on a status from 200 to 399, a TCP hook when the port
accepts a connection. The result is written to the termination log; the exit
code is non-zero when the hook failed. exec hooks are run by the operator in
the application's pods, never here (docs/hooks.md).`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		var hookType, handler, termLog string
		var timeout time.Duration
		fs.StringVar(&hookType, "hook", "", "preBackup, postBackup, preRestore or postRestore (for messages)")
		fs.StringVar(&handler, "handler", "", "the rendered handler, as JSON")
		fs.DurationVar(&timeout, "timeout", time.Minute, "how long the hook may take")
		fs.StringVar(&termLog, "termination-log", "/dev/termination-log", "where the result is written")
		return noArgs(func(ctx context.Context) error {
			if handler == "" {
				return usageError("--handler is required")
			}
			var h v1beta1.Handler
			if err := json.Unmarshal([]byte(handler), &h); err != nil {
				return usageError("--handler: %v", err)
			}
			res := jobresult.Result{Step: "run-hook"}
			if err := hook.Run(ctx, h, timeout); err != nil {
				res.Error = err.Error()
				logger.Printf("%s hook failed: %s", hookType, res.Error)
			}
			var errs []error
			if res.Error != "" {
				errs = append(errs, errors.New(res.Error))
			}
			if err := jobresult.WriteTerminationMessage(termLog, res); err != nil {
				errs = append(errs, fmt.Errorf("writing termination message: %v", err))
			}
			return errors.Join(errs...)
		})
	},
}
