// This file is added to restic's internal/repository by Stow's build (hack/restic).

package repository

import (
	"context"

	"github.com/restic/restic/internal/restic"
)

// RemoveLocksByID removes the lock files with the given IDs and returns those
// it removed, stopping at the first error. No other lock is touched.
func RemoveLocksByID(ctx context.Context, repo *Repository, ids restic.IDs) (restic.IDs, error) {
	var removed restic.IDs
	for _, id := range ids {
		if err := (&internalRepository{repo}).RemoveUnpacked(ctx, restic.LockFile, id); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	return removed, nil
}
