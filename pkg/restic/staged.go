package restic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// stagePrefix names the directory RestoreStaged restores into, inside the
// target; it is removed before RestoreStaged returns.
const stagePrefix = ".stow-restore-"

// RestoreStaged restores like Restore, without making restic's snapshot
// lookup wait in front of the restore when it need not.
//
// Restore must learn a snapshot's paths and mount tag (one restic run, with
// its key derivation) before it can run the restore that places files
// relative to the target. When the target is empty or absent and nothing
// narrows the restore (no path, include, exclude, extra argument or time
// bound), RestoreStaged runs both at once instead: restic restores the whole
// snapshot into a staging directory inside the target while the lookup runs,
// then each snapshot path's contents are renamed into the directory Restore
// would have put them in. Renames keep every file's data and metadata and
// cost one call per top-level entry. Whatever the staged result cannot
// place exactly as Restore would (the restore chose another "latest" than
// the lookup, nested paths, two paths sharing a directory), is thrown away
// and the looked-up snapshot is restored by Restore, so the result is the
// same in every case; only the time differs.
func (r *Restic) RestoreStaged(ctx context.Context, o RestoreOptions) ([]RestoredPath, error) {
	if !stageable(o) {
		return r.Restore(ctx, o)
	}
	if empty, err := emptyOrAbsent(o.MountPath); err != nil || !empty {
		return r.Restore(ctx, o)
	}
	created := missingAncestors(o.MountPath)
	if err := os.MkdirAll(o.MountPath, 0o755); err != nil {
		return nil, fmt.Errorf("creating restore target %s: %v", o.MountPath, err)
	}
	stage, err := os.MkdirTemp(o.MountPath, stagePrefix)
	if err != nil {
		return nil, fmt.Errorf("creating a staging directory in %s: %v", o.MountPath, err)
	}
	restoring := false // set once files may have reached the target
	defer func() {
		os.RemoveAll(stage)
		if !restoring {
			// As Restore, which fails before it creates anything.
			for _, dir := range created {
				os.Remove(dir)
			}
		}
	}()

	r.logf("restoring into %s and looking up the snapshot's paths at once", stage)
	both, cancel := context.WithCancel(ctx)
	defer cancel()
	var snap *Snapshot
	var lookErr error
	looked := make(chan struct{})
	go func() {
		defer close(looked)
		if snap, lookErr = r.findSnapshot(both, o); lookErr != nil {
			cancel() // the restore cannot be used without its snapshot
		}
	}()
	restored, restErr := r.restoreWhole(both, o, stage)
	<-looked
	if lookErr != nil {
		return nil, lookErr // what Restore would have said
	}
	if restErr != nil {
		return nil, restErr
	}
	moves, ok := stagedMoves(snap, restored, stage, o.MountPath)
	if !ok {
		r.logf("the staged restore cannot be placed as snapshot %s's paths are; restoring it again by its paths", snap.ShortID)
		if err := os.RemoveAll(stage); err != nil {
			return nil, fmt.Errorf("removing staging directory %s: %v", stage, err)
		}
		o.Resolved = snap
		restoring = true
		return r.Restore(ctx, o)
	}
	restoring = true
	var done []RestoredPath
	for _, m := range moves {
		if err := CheckNoSymlink(o.MountPath, m.target); err != nil {
			return done, err
		}
		if err := moveEntries(m.src, m.target); err != nil {
			return done, err
		}
		files := int64(-1)
		if len(moves) == 1 && restored.files >= 0 {
			// restic counted the path's directory and those above it too.
			if rel := strings.Trim(filepath.Clean(m.path), "/"); rel != "" {
				files = restored.files - int64(strings.Count(rel, "/")+1)
			} else {
				files = restored.files
			}
		}
		done = append(done, RestoredPath{SnapshotID: snap.ID, Path: m.path, Target: m.target, Files: files})
	}
	return done, nil
}

// stageable is true when o restores a whole snapshot chosen by id or as the
// latest of a host and tags: what one restic restore can select by itself.
func stageable(o RestoreOptions) bool {
	return o.Resolved == nil && o.Path == "" && len(o.Includes) == 0 && len(o.Excludes) == 0 &&
		len(o.ExtraMounts) == 0 && len(o.ExtraArgs) == 0 && o.AsOf.IsZero() && filepath.IsAbs(o.MountPath)
}

// emptyOrAbsent is true for a missing path or an empty directory (not a
// link to one).
func emptyOrAbsent(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil || !fi.IsDir() {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) == 0, err
}

// missingAncestors lists dir and those of its parents that do not exist,
// deepest first.
func missingAncestors(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			return missing
		}
	}
}

// wholeRestore is what restic reported of a restore of a whole snapshot.
type wholeRestore struct {
	shortID string
	files   int64 // files and directories, -1 when not reported
}

// restoreWhole restores o's snapshot, every path of it, into dir. It runs
// restic without --json, whose text output is the only one naming the
// snapshot restic chose for "latest".
func (r *Restic) restoreWhole(ctx context.Context, o RestoreOptions, dir string) (wholeRestore, error) {
	args := []string{"restore", "--target", dir}
	if o.Snapshot == "" || o.Snapshot == "latest" {
		if o.Host != "" {
			args = append(args, "--host", o.Host)
		}
		if o.Tags != "" {
			args = append(args, "--tag", o.Tags)
		}
		args = append(args, "latest")
	} else {
		args = append(args, o.Snapshot)
	}
	out, err := r.Run(ctx, args...)
	if err != nil {
		return wholeRestore{}, err
	}
	return parseTextRestore(out), nil
}

var (
	restoringLine = regexp.MustCompile(`^restoring snapshot ([0-9a-f]{8,64}) of `)
	summaryLine   = regexp.MustCompile(`^Summary: Restored (?:\d+ / )?(\d+) files/dirs`)
)

// parseTextRestore reads the chosen snapshot's short id and the summary's
// count from restic restore's text output.
func parseTextRestore(out []byte) wholeRestore {
	w := wholeRestore{files: -1}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := restoringLine.FindStringSubmatch(line); m != nil && w.shortID == "" {
			w.shortID = m[1]
		}
		if m := summaryLine.FindStringSubmatch(line); m != nil {
			if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				w.files = n
			}
		}
	}
	return w
}

// stagedMove moves the staged contents of one snapshot path to its target.
type stagedMove struct {
	path, src, target string
}

// stagedMoves places each path of snap, restored whole into stage, where
// Restore would restore it under mount. ok is false when the restore was of
// another snapshot, or when renames cannot place the paths exactly as
// Restore would: a path that is not a directory, nested paths, targets that
// share a directory (Restore would merge them), a target inside the stage,
// or a staged entry named like the stage.
func stagedMoves(snap *Snapshot, restored wholeRestore, stage, mount string) ([]stagedMove, bool) {
	if restored.shortID == "" || !strings.HasPrefix(snap.ID, restored.shortID) || len(snap.Paths) == 0 {
		return nil, false
	}
	var moves []stagedMove
	for _, p := range snap.Paths {
		if !filepath.IsAbs(p) {
			return nil, false
		}
		target, err := RestoreTarget(snap.MountPath(), p, mount)
		if err != nil || within(target, stage) {
			return nil, false
		}
		src := filepath.Join(stage, filepath.Clean(p))
		if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
			return nil, false
		}
		if _, err := os.Lstat(filepath.Join(src, filepath.Base(stage))); err == nil {
			return nil, false
		}
		for _, m := range moves {
			if within(m.path, p) || within(p, m.path) || within(m.target, target) || within(target, m.target) {
				return nil, false
			}
		}
		moves = append(moves, stagedMove{path: p, src: src, target: target})
	}
	return moves, true
}

// within is true when p is dir or lies below it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// moveEntries renames every entry of src into dst, creating dst. dst holds
// nothing of its own: the target was empty, and stagedMoves keeps targets
// apart.
func moveEntries(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating restore target %s: %v", dst, err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading staged restore: %v", err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("moving restored %s into place: %v", e.Name(), err)
		}
	}
	return nil
}
