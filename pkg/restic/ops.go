package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// EnsureRepository opens the repository and initializes it only when restic
// says it does not exist. Any other failure, above all a wrong password, is
// returned as is: initializing then could hide or damage a real repository.
// created reports whether restic init ran.
func (r *Restic) EnsureRepository(ctx context.Context) (created bool, err error) {
	// A repository restic init just created needs no second look.
	return r.initIfMissing(ctx, r.probe(ctx))
}

// WithRepository runs op, a restic operation that opens the repository, and
// when op fails because the repository does not exist, initializes it and
// runs op once more. Letting the first real operation double as the probe
// saves a restic run: every run spends ~0.5 s deriving the key from the
// password, which is most of a small incremental backup. Other failures are
// returned as for EnsureRepository. created reports whether restic init ran.
func (r *Restic) WithRepository(ctx context.Context, op func(context.Context) error) (created bool, err error) {
	created, err = r.initIfMissing(ctx, op(ctx))
	if created {
		err = op(ctx)
	}
	return created, err
}

// initIfMissing initializes the repository when openErr, the outcome of a
// run that opened it, says it does not exist; otherwise it returns openErr.
func (r *Restic) initIfMissing(ctx context.Context, openErr error) (created bool, err error) {
	if !errors.Is(openErr, ErrNoRepository) {
		return false, openErr
	}
	r.logf("repository %s does not exist: initializing it", r.Location.Display())
	if r.Location.Provider == v1beta1.ProviderLocal {
		// restic creates the directory too, but a clear error here beats
		// restic's when the mount is read-only.
		if err := os.MkdirAll(filepath.Dir(r.Location.Repository), 0o755); err != nil {
			return false, fmt.Errorf("creating local repository parent: %v", err)
		}
	}
	if _, err := r.Run(ctx, "init", "--json"); err != nil {
		return false, err
	}
	return true, nil
}

// missingContainer recognizes restic's retry messages for a bucket or
// container that does not exist. Restic retries those for 15 minutes, yet a
// missing bucket means there is no repository: init creates the bucket.
func missingContainer(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "bucket does not exist") || strings.Contains(l, "nosuchbucket") ||
		strings.Contains(l, "container does not exist") || strings.Contains(l, "containernotfound")
}

// runOpen runs a command that opens the repository. A missing bucket or
// container ends it at once with exit code "no repository" (see
// missingContainer) instead of after restic's 15 minutes of retries.
func (r *Restic) runOpen(ctx context.Context, args []string) (*runResult, error) {
	res, err := r.runWatch(ctx, args, missingContainer)
	if err == nil && res.aborted {
		res.code = exitNoRepository
		res.stderr = []byte("the bucket does not exist\n")
	}
	return res, err
}

// probe opens the repository config; ErrNoRepository when there is none.
func (r *Restic) probe(ctx context.Context) error {
	res, err := r.runOpen(ctx, []string{"cat", "config", "--json", "--no-lock"})
	if err != nil {
		return err
	}
	if res.code != 0 {
		return res.err("cat")
	}
	return nil
}

// BackupOptions configure one restic backup of one path.
type BackupOptions struct {
	Host string
	// MountPath is where the volume was mounted; it is recorded as the
	// stow-mount tag. Empty records the backed-up path itself.
	MountPath string
	Tags      []string
	Excludes  []string
	ExtraArgs []string
}

// UnreadableFilesError is a backup that wrote a snapshot but could not read
// some files (restic exit code 3). It is a failure: the snapshot is partial.
type UnreadableFilesError struct {
	Path       string
	SnapshotID string
	Files      []ItemError
}

func (e *UnreadableFilesError) Error() string {
	const show = 5
	var parts []string
	for i, f := range e.Files {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Files)-show))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", f.Item, shortCause(f)))
	}
	if len(parts) == 0 {
		parts = append(parts, "restic named none")
	}
	return fmt.Sprintf("backup of %s is incomplete: %d file(s) could not be read: %s",
		e.Path, len(e.Files), strings.Join(parts, ", "))
}

// shortCause drops the "op path:" prefix restic puts before the OS error.
func shortCause(f ItemError) string {
	if i := strings.LastIndex(f.Message, ": "); i >= 0 {
		return f.Message[i+2:]
	}
	return f.Message
}

// Backup backs up path and returns restic's summary.
func (r *Restic) Backup(ctx context.Context, path string, o BackupOptions) (*BackupSummary, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("backup path %q is not absolute", path)
	}
	path = filepath.Clean(path)
	mount := o.MountPath
	if mount == "" {
		mount = path
	}
	args := []string{"backup", path, "--json"}
	if o.Host != "" {
		args = append(args, "--host", o.Host)
	}
	args = append(args, "--tag", MountTagKey+"="+filepath.Clean(mount))
	for _, t := range o.Tags {
		args = append(args, "--tag", t)
	}
	for _, e := range o.Excludes {
		args = append(args, "--exclude", e)
	}
	args = append(args, o.ExtraArgs...)
	if r.CacheDir != "" {
		args = append(args, "--cleanup-cache")
	}
	res, err := r.runOpen(ctx, args)
	if err != nil {
		return nil, err
	}
	out, perr := parseBackupOutput(res.stdout, res.stderr)
	switch res.code {
	case 0:
	case exitPartialSource:
		e := &UnreadableFilesError{Path: path, Files: out.Errors}
		if out.Summary != nil {
			e.SnapshotID = out.Summary.SnapshotID
		}
		return out.Summary, e
	default:
		return nil, res.err("backup")
	}
	if perr != nil {
		return nil, perr
	}
	if out.Summary == nil || out.Summary.SnapshotID == "" {
		return nil, errors.New("restic backup succeeded but printed no summary with a snapshot id")
	}
	return out.Summary, nil
}

// SnapshotFilter selects snapshots. Latest keeps only the newest match.
type SnapshotFilter struct {
	IDs    []string
	Host   string
	Paths  []string
	Tags   []string
	Latest bool
}

func (f SnapshotFilter) args() []string {
	var a []string
	if f.Host != "" {
		a = append(a, "--host", f.Host)
	}
	for _, p := range f.Paths {
		a = append(a, "--path", p)
	}
	for _, t := range f.Tags {
		a = append(a, "--tag", t)
	}
	if f.Latest {
		a = append(a, "latest")
	}
	return append(a, f.IDs...)
}

// Snapshots lists snapshots, oldest first.
func (r *Restic) Snapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error) {
	out, err := r.Run(ctx, append([]string{"snapshots", "--json", "--no-lock"}, f.args()...)...)
	if err != nil {
		return nil, err
	}
	return parseSnapshots(out)
}

// RestoreOptions select what to restore and where.
type RestoreOptions struct {
	// Snapshot is an id or "latest" (of Host, Tags and Path).
	Snapshot string
	Host     string
	// Tags restricts "latest" to snapshots carrying every tag (a
	// comma-joined restic --tag value), e.g. the identity of one PVC.
	Tags string
	// Path restores only this snapshot path (and, with latest, selects
	// snapshots that contain it). Empty restores every path of the snapshot.
	Path     string
	Includes []string
	Excludes []string
	// MountPath is where the target volume is mounted now. Files land at
	// MountPath/<path relative to the mount path at backup time>.
	MountPath string
	// ExtraMounts are further volumes restored at once (new PVCs of one
	// restore): a snapshot path goes to the one of MountPath and ExtraMounts
	// it was backed up at or lies under (RestoreMount).
	ExtraMounts []string
	ExtraArgs   []string
	// AsOf, when set, makes "latest" the newest snapshot taken at or
	// before it.
	AsOf time.Time
	// Resolved, when set, is the snapshot to restore, already looked up:
	// Snapshot, Host and Tags are then not used to find one.
	Resolved *Snapshot
}

// RestoredPath reports one restored snapshot path.
type RestoredPath struct {
	SnapshotID string
	Path       string // path in the snapshot
	Target     string // directory it was restored into
	Files      int64  // files restored (restic's summary), -1 when unknown
}

// Restore restores one snapshot relative to the mount path, never to "/".
func (r *Restic) Restore(ctx context.Context, o RestoreOptions) ([]RestoredPath, error) {
	if !filepath.IsAbs(o.MountPath) {
		return nil, fmt.Errorf("restore mount path %q is not absolute", o.MountPath)
	}
	for _, p := range append(append([]string{o.Path}, o.Includes...), o.Excludes...) {
		if err := CheckNoParent(p); err != nil {
			return nil, err
		}
	}
	snap := o.Resolved
	if snap == nil {
		var err error
		if snap, err = r.findSnapshot(ctx, o); err != nil {
			return nil, err
		}
	}
	paths := snap.Paths
	if o.Path != "" {
		paths = nil
		for _, p := range snap.Paths {
			if filepath.Clean(p) == filepath.Clean(o.Path) {
				paths = append(paths, p)
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("snapshot %s does not contain path %s (it has %s)", snap.ShortID, o.Path, strings.Join(snap.Paths, ", "))
		}
	}
	var done []RestoredPath
	for _, p := range paths {
		mount := RestoreMount(snap.MountPath(), p, o.MountPath, o.ExtraMounts)
		target, err := RestoreTarget(snap.MountPath(), p, mount)
		if err != nil {
			return done, err
		}
		args := []string{"restore", snap.ID + ":" + p, "--target", target, "--json"}
		for _, in := range o.Includes {
			args = append(args, "--include", relativePattern(in, p))
		}
		for _, ex := range o.Excludes {
			args = append(args, "--exclude", relativePattern(ex, p))
		}
		args = append(args, o.ExtraArgs...)
		if err := CheckNoSymlink(mount, target); err != nil {
			return done, err
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return done, fmt.Errorf("creating restore target %s: %v", target, err)
		}
		out, err := r.Run(ctx, args...)
		if err != nil {
			return done, err
		}
		files, ok := restoredFiles(out)
		if !ok {
			files = -1
		}
		done = append(done, RestoredPath{SnapshotID: snap.ID, Path: p, Target: target, Files: files})
	}
	return done, nil
}

func (r *Restic) findSnapshot(ctx context.Context, o RestoreOptions) (*Snapshot, error) {
	f := SnapshotFilter{}
	id := o.Snapshot
	if id == "" || id == "latest" {
		f.Latest, f.Host = true, o.Host
		if o.Tags != "" {
			f.Tags = []string{o.Tags}
		}
		if o.Path != "" {
			f.Paths = []string{o.Path}
		}
	} else {
		f.IDs = []string{id}
	}
	latest := f.Latest
	if latest && !o.AsOf.IsZero() {
		f.Latest = false // restic cannot filter by time: list and choose
	}
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	if latest {
		snaps = TakenBy(snaps, o.AsOf)
	}
	if len(snaps) == 0 {
		if !latest {
			return nil, fmt.Errorf("no snapshot found with id %s", id)
		}
		msg := "no snapshot found"
		if o.Host != "" {
			msg += " for host " + o.Host
		}
		if o.Tags != "" {
			msg += " with tags " + o.Tags
		}
		if o.Path != "" {
			msg += " and path " + o.Path
		}
		if !o.AsOf.IsZero() {
			msg += " taken at or before " + o.AsOf.UTC().Format(time.RFC3339)
		}
		return nil, errors.New(msg)
	}
	s := snaps[len(snaps)-1]
	return &s, nil
}

// TakenBy keeps the snapshots taken at or before t, in their order; a zero
// t keeps them all.
func TakenBy(snaps []Snapshot, t time.Time) []Snapshot {
	if t.IsZero() {
		return snaps
	}
	var out []Snapshot
	for _, s := range snaps {
		if !s.Time.After(t) {
			out = append(out, s)
		}
	}
	return out
}

// RestoreMount picks the volume that snapshot path p (backed up at mount
// path backupMount) is restored into: without extra mounts, mount; else the
// mount path equal to backupMount, else the deepest one p lies under, else
// mount.
func RestoreMount(backupMount, p, mount string, extra []string) string {
	if len(extra) == 0 {
		return mount
	}
	all := append([]string{mount}, extra...)
	for _, m := range all {
		if backupMount != "" && filepath.Clean(m) == filepath.Clean(backupMount) {
			return m
		}
	}
	best := ""
	for _, m := range all {
		c := filepath.Clean(m)
		if (filepath.Clean(p) == c || strings.HasPrefix(filepath.Clean(p), c+"/")) && len(c) > len(best) {
			best = m
		}
	}
	if best == "" {
		return mount
	}
	return best
}

// RestoreTarget is the directory that snapshot path p is restored into: the
// restore mount path plus p relative to the backup mount path. Snapshots
// without a mount tag (taken by Stash) count as taken at p itself.
func RestoreTarget(backupMount, p, restoreMount string) (string, error) {
	rel := "."
	if backupMount != "" {
		r, err := filepath.Rel(filepath.Clean(backupMount), filepath.Clean(p))
		if err == nil && r != ".." && !strings.HasPrefix(r, "../") {
			rel = r
		}
	}
	target := filepath.Join(restoreMount, rel)
	if target != filepath.Clean(restoreMount) && !strings.HasPrefix(target, filepath.Clean(restoreMount)+"/") {
		return "", fmt.Errorf("restore target %s escapes mount path %s", target, restoreMount)
	}
	return target, nil
}

// CheckNoSymlink refuses a restore target below mount whose path, inside the
// volume, runs through a symbolic link: the link could point out of the
// volume (another mounted volume, the local repository, the Job's own
// files), and restic would follow it when it creates the target directory.
// restic itself replaces symlinks below the target by what the snapshot
// holds, so only the components from mount down to target need checking.
func CheckNoSymlink(mount, target string) error {
	mount, target = filepath.Clean(mount), filepath.Clean(target)
	rel, err := filepath.Rel(mount, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("restore target %s is outside the mount path %s", target, mount)
	}
	p := mount
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if os.IsNotExist(err) {
			return nil // created below by MkdirAll, as a directory
		}
		if err != nil {
			return fmt.Errorf("checking restore target %s: %v", p, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("refusing to restore into %s: %s is a symbolic link, which could lead out of the target volume", target, p)
		}
	}
	return nil
}

// CheckNoParent refuses a path or pattern with a ".." element: a restore must
// never write outside its target.
func CheckNoParent(p string) error {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return fmt.Errorf("path %q contains '..': refusing to restore outside the target", p)
		}
	}
	return nil
}

// relativePattern rewrites an include/exclude written against the original
// absolute path (Stash style, "/stow-data/dir/f") to the form restic matches
// when restoring "<id>:<path>" ("/dir/f"). Other patterns pass unchanged.
func relativePattern(pattern, snapshotPath string) string {
	sp := strings.TrimRight(filepath.Clean(snapshotPath), "/")
	if sp == "" {
		return pattern
	}
	if pattern == sp {
		return "/"
	}
	if rest, ok := strings.CutPrefix(pattern, sp+"/"); ok {
		return "/" + rest
	}
	return pattern
}

// RetentionPolicy is restic forget's policy. Zero counts are not passed.
type RetentionPolicy struct {
	KeepLast, KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly int
	KeepTags                                                             []string
	Prune, DryRun                                                        bool
}

// IsEmpty is true when the policy would keep everything.
func (p RetentionPolicy) IsEmpty() bool {
	return p.KeepLast <= 0 && p.KeepHourly <= 0 && p.KeepDaily <= 0 && p.KeepWeekly <= 0 &&
		p.KeepMonthly <= 0 && p.KeepYearly <= 0 && len(p.KeepTags) == 0
}

// Args are the restic forget flags for the policy.
func (p RetentionPolicy) Args() []string {
	var a []string
	for _, k := range []struct {
		flag string
		n    int
	}{
		{"--keep-last", p.KeepLast}, {"--keep-hourly", p.KeepHourly}, {"--keep-daily", p.KeepDaily},
		{"--keep-weekly", p.KeepWeekly}, {"--keep-monthly", p.KeepMonthly}, {"--keep-yearly", p.KeepYearly},
	} {
		if k.n > 0 {
			a = append(a, k.flag, strconv.Itoa(k.n))
		}
	}
	for _, t := range p.KeepTags {
		if t != "" {
			a = append(a, "--keep-tag", t)
		}
	}
	if p.Prune {
		a = append(a, "--prune")
	}
	if p.DryRun {
		a = append(a, "--dry-run")
	}
	return a
}

// ErrEmptyPolicy is returned by Forget for a policy that keeps everything;
// restic would refuse it or, worse, act on defaults.
var ErrEmptyPolicy = errors.New("retention policy keeps nothing: set at least one keep-* > 0 or keep-tag")

// Forget applies the retention policy to the snapshots that carry every tag
// of filter (a comma-joined restic --tag value; it must not be empty, so
// that one configuration's policy never thins snapshots it does not own),
// grouped by host and paths, and counts what it kept and removed.
func (r *Restic) Forget(ctx context.Context, p RetentionPolicy, filter string) (ForgetResult, error) {
	if p.IsEmpty() {
		return ForgetResult{}, ErrEmptyPolicy
	}
	if strings.TrimSpace(filter) == "" {
		return ForgetResult{}, errors.New("retention needs a tag filter: refusing to apply a policy to every snapshot of the repository")
	}
	args := []string{"forget", "--json", "--tag", filter, "--group-by", "host,paths"}
	out, err := r.Run(ctx, append(args, p.Args()...)...)
	if err != nil {
		return ForgetResult{}, err
	}
	return parseForget(out)
}

// Prune removes data no snapshot references.
func (r *Restic) Prune(ctx context.Context) error {
	_, err := r.Run(ctx, "prune")
	return err
}

// Check verifies the repository structure. It fails unless restic reports
// "no errors were found".
func (r *Restic) Check(ctx context.Context) error { return r.CheckSubset(ctx, "") }

// CheckSubset is Check that also reads and verifies a subset of the data
// (restic check --read-data-subset; "" reads none).
func (r *Restic) CheckSubset(ctx context.Context, subset string) error {
	args := []string{"check"}
	if subset != "" {
		args = append(args, "--read-data-subset", subset)
	}
	out, err := r.Run(ctx, args...)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "no errors were found" {
			return nil
		}
	}
	return errors.New("restic check did not report \"no errors were found\"")
}

// RepositoryStats is what restic stats --mode raw-data reports.
type RepositoryStats struct {
	// TotalSize is the stored size of the repository in bytes.
	TotalSize uint64 `json:"total_size"`
	// SnapshotsCount is the number of snapshots in the repository.
	SnapshotsCount int64 `json:"snapshots_count"`
}

// Stats measures the repository (restic stats --mode raw-data): its stored
// size and its snapshot count, in one run that takes no lock.
func (r *Restic) Stats(ctx context.Context) (RepositoryStats, error) {
	out, err := r.Run(ctx, "stats", "--json", "--mode", "raw-data", "--no-lock")
	if err != nil {
		return RepositoryStats{}, err
	}
	var s struct {
		RepositoryStats
		Present *uint64 `json:"total_size"`
	}
	line := firstJSON(out, '{')
	if line == nil || json.Unmarshal(line, &s) != nil || s.Present == nil {
		return RepositoryStats{}, errors.New("restic stats printed no total_size")
	}
	s.RepositoryStats.TotalSize = *s.Present
	return s.RepositoryStats, nil
}
