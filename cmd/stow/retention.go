package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

// retentionFlags are the retention policy of update-status, which backup-pvc
// takes too when it applies the policy itself (--apply-retention): one
// container instead of two, when the operator builds the Job so.
type retentionFlags struct {
	policy   restic.RetentionPolicy
	keepTags string
}

func (f *retentionFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.policy.KeepLast, "retention-keep-last", 0, "keep the last N snapshots (0: not set)")
	fs.IntVar(&f.policy.KeepHourly, "retention-keep-hourly", 0, "keep the last N hourly snapshots")
	fs.IntVar(&f.policy.KeepDaily, "retention-keep-daily", 0, "keep the last N daily snapshots")
	fs.IntVar(&f.policy.KeepWeekly, "retention-keep-weekly", 0, "keep the last N weekly snapshots")
	fs.IntVar(&f.policy.KeepMonthly, "retention-keep-monthly", 0, "keep the last N monthly snapshots")
	fs.IntVar(&f.policy.KeepYearly, "retention-keep-yearly", 0, "keep the last N yearly snapshots")
	fs.StringVar(&f.keepTags, "retention-keep-tags", "", "comma-separated tags whose snapshots are kept")
	fs.BoolVar(&f.policy.Prune, "retention-prune", false, "accepted for Stash compatibility: unreferenced data is pruned on the repository's maintenance schedule, not in a session")
	fs.BoolVar(&f.policy.DryRun, "retention-dry-run", false, "only report what retention would remove")
}

// apply applies the policy to this configuration's own snapshots (restic
// forget of the snapshots tagged with its identity; an empty policy only
// counts them) and records the outcome in res.Retention. A snapshot without
// that identity is never removed.
func (f *retentionFlags) apply(ctx context.Context, j *jobFlags, r *restic.Restic, res *jobresult.Result) error {
	policy := f.policy
	policy.KeepTags = splitList(f.keepTags)
	id, ok := j.identity()
	if !ok {
		msg := "the snapshot identity (namespace, invoker, target) is unknown: retention is not applied, so no snapshot of anyone else can be removed"
		res.Retention = &jobresult.RetentionResult{Error: msg}
		return fmt.Errorf("retention: %s", msg)
	}
	if policy.Prune {
		logger.Printf("retention prune: unreferenced data is removed by the repository's scheduled prune, not in this session")
		policy.Prune = false
	}
	if policy.IsEmpty() {
		// Nothing to forget; still report how many snapshots it has.
		snaps, err := r.Snapshots(ctx, restic.SnapshotFilter{Tags: []string{id.InvokerFilter()}})
		if err != nil {
			return fmt.Errorf("counting snapshots: %v", oneLine(err.Error()))
		}
		res.Retention = &jobresult.RetentionResult{SnapshotsKept: int64(len(snaps))}
		return nil
	}
	var fr restic.ForgetResult
	err := r.WaitForLock(ctx, "forget", j.lockPolicy(), j.lockDeadline(), func(ctx context.Context) (err error) {
		fr, err = r.Forget(ctx, policy, id.InvokerFilter())
		return err
	})
	if err != nil {
		msg := oneLine(err.Error())
		res.Retention = &jobresult.RetentionResult{Error: msg}
		return fmt.Errorf("retention: %s", msg)
	}
	res.Retention = &jobresult.RetentionResult{SnapshotsKept: fr.Kept, SnapshotsRemoved: fr.Removed, RemovedIDs: removedIDs(fr)}
	logger.Printf("retention of %s kept %d and removed %d snapshot(s)%s", id.InvokerFilter(), fr.Kept, fr.Removed, map[bool]string{true: " (dry run)"}[policy.DryRun])
	return nil
}
