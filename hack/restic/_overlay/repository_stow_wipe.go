// This file is added to restic's internal/repository by Stow's build (hack/restic).

package repository

import (
	"context"

	"github.com/restic/restic/internal/backend"
)

// WipedType counts the files of one type that Wipe removed.
type WipedType struct {
	Type  string `json:"type"`
	Files int64  `json:"files"`
	Bytes int64  `json:"bytes"`
}

// Wipe removes every file of the repository through its backend: the
// backend lists only the repository's own files (its path, then a directory
// per file type), so nothing outside the repository is touched. Keys and
// config go last: a wipe interrupted before them can be run again, since the
// repository still opens.
func Wipe(ctx context.Context, repo *Repository) ([]WipedType, error) {
	be := repo.be
	var out []WipedType
	for _, t := range []backend.FileType{backend.PackFile, backend.SnapshotFile, backend.IndexFile, backend.LockFile, backend.KeyFile} {
		w := WipedType{Type: t.String()}
		var names []backend.FileInfo
		err := be.List(ctx, t, func(fi backend.FileInfo) error {
			names = append(names, fi)
			return nil
		})
		if err == nil {
			// The key that opened the repository goes last of all keys.
			if t == backend.KeyFile {
				for i, fi := range names {
					if fi.Name == repo.KeyID().String() {
						names = append(append(names[:i:i], names[i+1:]...), fi)
						break
					}
				}
			}
			for _, fi := range names {
				if err = be.Remove(ctx, backend.Handle{Type: t, Name: fi.Name}); err != nil && !be.IsNotExist(err) {
					break
				}
				err = nil
				w.Files++
				w.Bytes += fi.Size
			}
		}
		out = append(out, w)
		if err != nil {
			return out, err
		}
	}
	w := WipedType{Type: backend.ConfigFile.String()}
	if err := be.Remove(ctx, backend.Handle{Type: backend.ConfigFile}); err != nil && !be.IsNotExist(err) {
		return append(out, w), err
	}
	w.Files = 1
	return append(out, w), nil
}
