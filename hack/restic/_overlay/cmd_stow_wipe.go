// This file is added to restic's cmd/restic by Stow's build (hack/restic).

package main

import (
	"context"
	"encoding/json"

	"github.com/restic/restic/internal/global"
	"github.com/restic/restic/internal/repository"
	"github.com/restic/restic/internal/ui"
	"github.com/spf13/cobra"
)

func newStowWipeCommand(globalOptions *global.Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stow-wipe",
		Short: "Delete every file of the repository (added by Stow)",
		Long: `
The "stow-wipe" command deletes the repository: every file restic stores at the
repository's location (data, snapshots, index, locks, keys, config), through
restic's own backend code and only inside the repository's own path. Nothing
else at the backend is touched: objects outside restic's layout, and other
repositories (a sibling prefix), stay. It takes no lock and asks nothing:
whoever runs it must have made sure no one else uses the repository.

The repository is opened first, so the password must be right: only someone
who could read the repository can wipe it. Keys and config go last; it prints
one JSON object with the number of files and bytes removed per file type.

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
			return runStowWipe(cmd.Context(), *globalOptions, globalOptions.Term)
		},
	}
	return cmd
}

func runStowWipe(ctx context.Context, gopts global.Options, term ui.Terminal) error {
	printer := ui.NewProgressPrinter(true, gopts.Verbosity, term)
	// No cache: the cache would keep copies of what is being deleted.
	gopts.NoCache = true
	repo, err := global.OpenRepository(ctx, gopts, printer)
	if err != nil {
		return err
	}
	removed, err := repository.Wipe(ctx, repo)
	if err != nil {
		return err
	}
	b, err := json.Marshal(struct {
		Removed []repository.WipedType `json:"removed"`
	}{removed})
	if err != nil {
		return err
	}
	printer.S("%s", b)
	return nil
}
