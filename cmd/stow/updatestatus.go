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
		fs.IntVar(&o.policy.KeepLast, "retention-keep-last", 0, "keep the last N snapshots (0: not set)")
		fs.IntVar(&o.policy.KeepHourly, "retention-keep-hourly", 0, "keep the last N hourly snapshots")
		fs.IntVar(&o.policy.KeepDaily, "retention-keep-daily", 0, "keep the last N daily snapshots")
		fs.IntVar(&o.policy.KeepWeekly, "retention-keep-weekly", 0, "keep the last N weekly snapshots")
		fs.IntVar(&o.policy.KeepMonthly, "retention-keep-monthly", 0, "keep the last N monthly snapshots")
		fs.IntVar(&o.policy.KeepYearly, "retention-keep-yearly", 0, "keep the last N yearly snapshots")
		fs.StringVar(&o.keepTags, "retention-keep-tags", "", "comma-separated tags whose snapshots are kept")
		fs.BoolVar(&o.policy.Prune, "retention-prune", false, "accepted for Stash compatibility: unreferenced data is pruned on the repository's maintenance schedule, not in a session")
		fs.BoolVar(&o.policy.DryRun, "retention-dry-run", false, "only report what retention would remove")
		fs.BoolVar(&o.integrityCheck, "integrity-check", false, "also run restic check after retention (the repository's maintenance checks it on its own schedule)")
		registerIgnoredMetricsFlags(fs)
		fs.String("repository-namespace", "", "accepted for compatibility; the operator labels the metrics")
		return noArgs(o.run)
	},
}

type updateStatusOptions struct {
	job                           jobFlags
	backupSession, restoreSession string
	policy                        restic.RetentionPolicy
	keepTags                      string
	integrityCheck                bool
}

func (o *updateStatusOptions) run(ctx context.Context) error {
	o.policy.KeepTags = splitList(o.keepTags)
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
// snapshots, and checks the repository only when asked to (Stash checked
// after every backup; Stow runs check, prune and the size refresh on the
// Repository's maintenance schedule, so a session costs what its change
// costs). A retention failure stops the chain, as a failed step should.
func (o *updateStatusOptions) maintainRepository(ctx context.Context, res *jobresult.Result) error {
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return err
	}
	defer closeRepo()
	defer func() { res.StaleLocksRemoved = r.LocksRemoved }()
	id, ok := o.job.identity()
	if !ok {
		msg := "the snapshot identity (namespace, invoker, target) is unknown: retention is not applied, so no snapshot of anyone else can be removed"
		res.Retention = &jobresult.RetentionResult{Error: msg}
		return fmt.Errorf("retention: %s", msg)
	}
	policy, deadline := o.job.lockPolicy(), o.job.lockDeadline()
	if o.policy.Prune {
		logger.Printf("retention prune: unreferenced data is removed by the repository's scheduled prune, not in this session")
		o.policy.Prune = false
	}
	if o.policy.IsEmpty() {
		// Nothing to forget; still report how many snapshots it has.
		snaps, err := r.Snapshots(ctx, restic.SnapshotFilter{Tags: []string{id.InvokerFilter()}})
		if err != nil {
			return fmt.Errorf("counting snapshots: %v", oneLine(err.Error()))
		}
		res.Retention = &jobresult.RetentionResult{SnapshotsKept: int64(len(snaps))}
	} else {
		var fr restic.ForgetResult
		err := r.WaitForLock(ctx, "forget", policy, deadline, func(ctx context.Context) (err error) {
			fr, err = r.Forget(ctx, o.policy, id.InvokerFilter())
			return err
		})
		if err != nil {
			msg := oneLine(err.Error())
			res.Retention = &jobresult.RetentionResult{Error: msg}
			return fmt.Errorf("retention: %s", msg)
		}
		res.Retention = &jobresult.RetentionResult{SnapshotsKept: fr.Kept, SnapshotsRemoved: fr.Removed, RemovedIDs: removedIDs(fr)}
		logger.Printf("retention of %s kept %d and removed %d snapshot(s)%s", id.InvokerFilter(), fr.Kept, fr.Removed, map[bool]string{true: " (dry run)"}[o.policy.DryRun])
	}
	if o.integrityCheck {
		err := r.WaitForLock(ctx, "check", policy, deadline, r.Check)
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
