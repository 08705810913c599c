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

var wipeCommand = command{
	name:  "wipe",
	short: "delete a repository's data at its backend (wipeOut on Repository deletion)",
	long: `Deletes the restic repository at the backend location given by the flags:
every file restic keeps there (data, snapshots, index, locks, keys, config),
through restic's own backend code, and nothing outside the repository's own
bucket and prefix (a sibling prefix such as "a2" next to "a" is not touched).
It refuses a location with no prefix (a whole bucket), the local and b2
backends, and a repository with a lock it cannot prove stale (someone uses
it). The password must open the repository. A location with no repository
is reported as absent, not as a failure. The result goes to the termination
log; the step exits non-zero if it failed. The operator runs it when a
Repository with wipeOut: true is deleted (docs/maintenance.md).`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		o := &wipeOptions{}
		o.job.register(fs)
		return noArgs(o.run)
	},
}

type wipeOptions struct {
	job jobFlags
}

func (o *wipeOptions) run(ctx context.Context) error {
	res := jobresult.Result{Step: "wipe"}
	finish := func(err error) error {
		if err != nil {
			res.Error = oneLine(err.Error())
		}
		res.Duration = o.job.elapsed()
		return o.job.finish(res, false)
	}
	if err := o.job.load(); err != nil {
		return finish(err)
	}
	b, err := o.job.backend.Backend()
	if err != nil {
		return finish(err)
	}
	if why := restic.WipeRefusal(b); why != "" {
		return finish(errors.New(why))
	}
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return finish(err)
	}
	defer closeRepo()
	w, err := wipe(ctx, r, o.job.lockPolicy())
	if err != nil {
		return finish(err)
	}
	res.Wipe = &jobresult.WipeResult{Absent: w.Absent, Files: w.Files(), Bytes: w.Bytes()}
	if w.Absent {
		logger.Printf("no repository at %s: nothing to wipe", r.Location.Display())
	} else {
		logger.Printf("wiped %s: %d files, %s", r.Location.Display(), w.Files(), restic.FormatSize(uint64(w.Bytes())))
	}
	return finish(nil)
}

// wipe deletes the repository once no lock but provably stale ones is left.
func wipe(ctx context.Context, r *restic.Restic, p restic.LockPolicy) (restic.WipeResult, error) {
	locks, err := r.Locks(ctx)
	if errors.Is(err, restic.ErrNoRepository) {
		return restic.WipeResult{Absent: true}, nil
	}
	if err != nil {
		return restic.WipeResult{}, err
	}
	if _, err := r.RemoveStaleLocks(ctx, locks, p); err != nil && !errors.Is(err, restic.ErrNoLockRemoval) {
		return restic.WipeResult{}, err
	}
	// What is left after the provably stale locks went is someone's work.
	if locks, err = r.Locks(ctx); err != nil {
		return restic.WipeResult{}, err
	}
	var live []string
	for _, l := range locks {
		live = append(live, fmt.Sprintf("%s since %s", l.Holder(), l.Time.UTC().Format(time.RFC3339)))
	}
	if len(live) > 0 {
		return restic.WipeResult{}, fmt.Errorf("the repository is in use (lock held by %s): not wiped", strings.Join(live, "; "))
	}
	return r.Wipe(ctx)
}
