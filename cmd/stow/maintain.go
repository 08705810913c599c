package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

var maintainCommand = command{
	name:  "maintain",
	short: "repository maintenance: remove stale locks, prune, check, refresh (a maintenance Job)",
	long: `Runs the repository-wide work that backup sessions do not do, in this order:
--unlock removes the locks it can prove stale (restic's own rule, or a Stow Job
pod of this cluster that no longer runs) and reports the others; --prune
removes data no snapshot references (restic prune); --check verifies the
repository (restic check, with --read-data-subset also that share of the
data); --refresh measures its size and counts its snapshots (restic stats).
Prune and check need the repository alone: a lock held by someone else is
waited for until the deadline, then the step fails naming the holder. The
result goes to the termination log; the step exits non-zero if any part
failed; the operator pushes the repository metrics from it. Storage
credentials come from the environment (RESTIC_PASSWORD, ...).`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		o := &maintainOptions{}
		o.job.register(fs)
		fs.BoolVar(&o.unlock, "unlock", false, "remove the locks that are provably stale")
		fs.BoolVar(&o.prune, "prune", false, "remove unreferenced data (restic prune)")
		fs.BoolVar(&o.check, "check", false, "verify the repository (restic check)")
		fs.StringVar(&o.readDataSubset, "read-data-subset", "", "with --check, also read and verify this subset of the data (restic's n/t, x% or size)")
		fs.BoolVar(&o.refresh, "refresh", false, "measure the repository's size and count its snapshots")
		registerIgnoredMetricsFlags(fs)
		return noArgs(o.run)
	},
}

type maintainOptions struct {
	job                           jobFlags
	unlock, prune, check, refresh bool
	readDataSubset                string
}

func (o *maintainOptions) run(ctx context.Context) error {
	res := jobresult.Result{Step: "maintain"}
	finish := func(errs []string) error {
		res.Error = strings.Join(errs, "; ")
		res.Duration = o.job.elapsed()
		return o.job.finish(res, false)
	}
	if err := o.job.load(); err != nil {
		return finish([]string{oneLine(err.Error())})
	}
	if !o.unlock && !o.prune && !o.check && !o.refresh {
		return finish([]string{"nothing to do: give --unlock, --prune, --check or --refresh"})
	}
	if o.readDataSubset != "" && strings.ContainsAny(o.readDataSubset, " \t") {
		return finish([]string{fmt.Sprintf("--read-data-subset %q is not one value", o.readDataSubset)})
	}
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return finish([]string{oneLine(err.Error())})
	}
	defer closeRepo()
	policy, deadline := o.job.lockPolicy(), o.job.lockDeadline()
	var errs []string
	if o.unlock {
		m, err := o.removeStaleLocks(ctx, r, policy)
		res.Maintenance = &m
		if err != nil {
			errs = append(errs, "unlock: "+oneLine(err.Error()))
		}
	}
	if o.prune {
		err := r.WaitForLock(ctx, "prune", policy, deadline, r.Prune)
		res.Pruned = boolPtr(err == nil)
		if err != nil {
			errs = append(errs, "prune: "+oneLine(err.Error()))
		} else {
			logger.Printf("pruned %s", r.Location.Display())
		}
	}
	if o.check {
		err := r.WaitForLock(ctx, "check", policy, deadline, func(ctx context.Context) error {
			return r.CheckSubset(ctx, o.readDataSubset)
		})
		res.Integrity = boolPtr(err == nil)
		if err != nil {
			errs = append(errs, "check: "+oneLine(err.Error()))
		} else {
			logger.Printf("repository integrity verified%s", map[bool]string{true: " (data subset " + o.readDataSubset + ")"}[o.readDataSubset != ""])
		}
	}
	if o.refresh {
		st, err := r.Stats(ctx)
		if err != nil {
			errs = append(errs, "refresh: "+oneLine(err.Error()))
		} else {
			res.TotalSize = restic.FormatSize(st.TotalSize)
			res.RepositorySnapshots = &st.SnapshotsCount
			logger.Printf("repository holds %d snapshots, %s", st.SnapshotsCount, res.TotalSize)
		}
	}
	return finish(errs)
}

// removeStaleLocks removes what the lock policy proves stale and describes
// every lock it keeps.
func (o *maintainOptions) removeStaleLocks(ctx context.Context, r *restic.Restic, p restic.LockPolicy) (jobresult.MaintenanceResult, error) {
	var m jobresult.MaintenanceResult
	locks, err := r.Locks(ctx)
	if err != nil {
		return m, err
	}
	removed, err := r.RemoveStaleLocks(ctx, locks, p)
	m.LocksRemoved = len(removed)
	gone := map[string]bool{}
	for _, l := range removed {
		gone[l.ID] = true
	}
	for _, l := range locks {
		if !gone[l.ID] {
			m.LocksKept = append(m.LocksKept, fmt.Sprintf("%s since %s", l.Holder(), l.Time.UTC().Format(time.RFC3339)))
		}
	}
	logger.Printf("locks: removed %d, kept %d", m.LocksRemoved, len(m.LocksKept))
	if err != nil && !errors.Is(err, restic.ErrNoLockRemoval) {
		return m, err
	}
	return m, nil
}
