// This file is added to restic's cmd/restic by Stow's build (hack/restic).

package main

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/restic/restic/internal/errors"
	"github.com/restic/restic/internal/global"
	"github.com/restic/restic/internal/repository"
	"github.com/restic/restic/internal/restic"
	"github.com/restic/restic/internal/ui"
	"github.com/spf13/cobra"
)

func newStowLocksCommand(globalOptions *global.Options) *cobra.Command {
	var remove []string
	cmd := &cobra.Command{
		Use:   "stow-locks [--remove ID]...",
		Short: "List locks with their holders; remove locks by ID (added by Stow)",
		Long: `
The "stow-locks" command prints one JSON object: "locks", every lock of the
repository with its holder (time, exclusive, hostname, username, pid, uid, gid),
oldest first, and "removed", the IDs of the locks --remove deleted.

--remove deletes exactly the lock files named (full IDs), and only if they
exist; it never touches any other lock. It takes no lock itself.

EXIT STATUS
===========

Exit status is 0 if the command was successful.
Exit status is 1 if there was any error.
Exit status is 10 if the repository does not exist.
Exit status is 12 if the password is incorrect.
`,
		GroupID:           cmdGroupAdvanced,
		DisableAutoGenTag: true,
		Args:              cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStowLocks(cmd.Context(), *globalOptions, remove, globalOptions.Term)
		},
	}
	cmd.Flags().StringArrayVar(&remove, "remove", nil, "remove the lock with this full `ID` (repeatable)")
	return cmd
}

type stowLock struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username"`
	PID       int       `json:"pid"`
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
	// Error is set when the lock file could not be read (removed meanwhile,
	// or damaged); the other fields are then empty.
	Error string `json:"error,omitempty"`
}

func runStowLocks(ctx context.Context, gopts global.Options, remove []string, term ui.Terminal) error {
	printer := ui.NewProgressPrinter(true, gopts.Verbosity, term)
	var ids restic.IDs
	for _, s := range remove {
		id, err := restic.ParseID(s)
		if err != nil {
			return errors.Fatalf("invalid lock ID %q: %v", s, err)
		}
		ids = append(ids, id)
	}
	// Opened without a lock, as restic's unlock command does (the no-lock
	// mode of openWithReadLock would make removals dry runs).
	repo, err := global.OpenRepository(ctx, gopts, printer)
	if err != nil {
		return err
	}

	out := struct {
		Locks   []stowLock `json:"locks"`
		Removed []string   `json:"removed"`
	}{Locks: []stowLock{}, Removed: []string{}}

	var mu sync.Mutex
	err = restic.ForAllLocks(ctx, repo, nil, func(id restic.ID, l *restic.Lock, err error) error {
		e := stowLock{ID: id.String()}
		if err != nil {
			e.Error = err.Error()
		} else {
			e.Time, e.Exclusive, e.Hostname, e.Username = l.Time, l.Exclusive, l.Hostname, l.Username
			e.PID, e.UID, e.GID = l.PID, l.UID, l.GID
		}
		mu.Lock()
		out.Locks = append(out.Locks, e)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	// Only locks that exist are removed: one that is gone was removed by
	// its holder, and asking the backend for it would only log failures.
	present := map[restic.ID]bool{}
	for _, l := range out.Locks {
		id, _ := restic.ParseID(l.ID)
		present[id] = true
	}
	var toRemove restic.IDs
	for _, id := range ids {
		if present[id] {
			toRemove = append(toRemove, id)
		}
	}
	removed, err := repository.RemoveLocksByID(ctx, repo, toRemove)
	gone := map[string]bool{}
	for _, id := range removed {
		out.Removed = append(out.Removed, id.String())
		gone[id.String()] = true
	}
	if err != nil {
		return err
	}
	kept := out.Locks[:0]
	for _, l := range out.Locks {
		if !gone[l.ID] {
			kept = append(kept, l)
		}
	}
	out.Locks = kept
	sort.Slice(out.Locks, func(i, j int) bool {
		if !out.Locks[i].Time.Equal(out.Locks[j].Time) {
			return out.Locks[i].Time.Before(out.Locks[j].Time)
		}
		return out.Locks[i].ID < out.Locks[j].ID
	})
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	printer.S("%s", b)
	return nil
}
