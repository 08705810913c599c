package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/restic"
)

var updateStatusCommand = command{
	name:  "update-status",
	short: "apply retention, verify the repository, push metrics (last step of a Job)",
	long: `Reads the previous step's result from <output-dir>/output.json. After a
successful backup it applies the retention policy to this configuration's own
snapshots (restic forget of the snapshots tagged with its identity, grouped by
host and paths; flags --retention-*; prune only with --retention-prune); a
snapshot without that identity is never removed; --retention-prune is left
to the repository's scheduled prune. It runs restic check only when
--integrity-check is set (the repository's maintenance checks it on its own
schedule). It writes the combined result to the termination log, from which
the operator pushes the host and repository metrics (a Job pushes none, so
it cannot push for anyone else). It exits non-zero if any step failed.`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		o := &updateStatusOptions{}
		o.job.register(fs)
		fs.StringVar(&o.backupSession, "backupsession", "", "BackupSession name (backup Jobs)")
		fs.StringVar(&o.restoreSession, "restoresession", "", "RestoreSession name (restore Jobs)")
		o.retention.register(fs)
		fs.BoolVar(&o.integrityCheck, "integrity-check", false, "also run restic check after retention (the repository's maintenance checks it on its own schedule)")
		registerIgnoredMetricsFlags(fs)
		fs.String("repository-namespace", "", "accepted for compatibility; the operator labels the metrics")
		return noArgs(o.run)
	},
}

type updateStatusOptions struct {
	job                           jobFlags
	backupSession, restoreSession string
	retention                     retentionFlags
	integrityCheck                bool
}

func (o *updateStatusOptions) run(ctx context.Context) error {
	if err := o.job.load(); err != nil {
		res := jobresult.Result{Step: "update-status", Host: o.job.host(), Error: oneLine(err.Error())}
		return o.job.finish(res, false)
	}
	prev, err := readOutput(o.job.outputPath())
	if err != nil {
		res := jobresult.Result{Step: "update-status", Host: o.job.host(), Error: oneLine(err.Error())}
		return o.job.finish(res, false)
	}
	// The final result carries the previous step's report forward (its
	// own lock count aside: the operator adds up every step's).
	res := prev
	res.Step = "update-status"
	res.StaleLocksRemoved = 0
	if res.Host == "" {
		res.Host = o.job.host()
	}
	var failures []string
	if prev.Error != "" {
		failures = append(failures, prev.Step+": "+prev.Error)
	}
	restore := prev.Step == "restore-pvc" || prev.Step == "restore" || (o.restoreSession != "" && o.backupSession == "")
	if !restore && prev.Error == "" {
		if err := o.maintainRepository(ctx, &res); err != nil {
			failures = append(failures, err.Error())
		}
	}
	res.Error = strings.Join(failures, "; ")
	return o.job.finish(res, false)
}

// maintainRepository applies retention to this configuration's own
// snapshots, unless the backup step applied it already (backup-pvc
// --apply-retention: its result says so), and checks the repository only
// when asked to (Stash checked after every backup; Stow runs check, prune
// and the size refresh on the Repository's maintenance schedule, so a
// session costs what its change costs). A retention failure stops the
// chain, as a failed step should.
func (o *updateStatusOptions) maintainRepository(ctx context.Context, res *jobresult.Result) error {
	if res.Retention != nil && !o.integrityCheck {
		logger.Printf("retention was applied by the backup step")
		return nil
	}
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return err
	}
	defer closeRepo()
	defer func() { res.StaleLocksRemoved = r.LocksRemoved }()
	if res.Retention == nil {
		if err := o.retention.apply(ctx, &o.job, r, res); err != nil {
			return err
		}
	}
	if o.integrityCheck {
		err := r.WaitForLock(ctx, "check", o.job.lockPolicy(), o.job.lockDeadline(), r.Check)
		res.Integrity = boolPtr(err == nil)
		if err != nil {
			return fmt.Errorf("integrity check: %s", oneLine(err.Error()))
		}
		logger.Printf("repository integrity verified")
	}
	return nil
}

// removedIDs are the short ids (Snapshot record names) of what forget
// removed, at most jobresult.MaxRemovedIDs of them.
func removedIDs(fr restic.ForgetResult) []string {
	var out []string
	for _, g := range fr.Groups {
		for _, s := range g.Remove {
			if len(out) == jobresult.MaxRemovedIDs {
				return out
			}
			out = append(out, names.SnapshotRecord(s.ID))
		}
	}
	return out
}
