package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

// hasEntries tells whether directory p holds anything: an empty volume backs
// up as an empty snapshot, honestly; a full one emptied by excludes does not.
func hasEntries(p string) bool {
	d, err := os.Open(p)
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(2)
	for _, n := range names {
		if n != "lost+found" { // what mkfs leaves in an unused volume
			return true
		}
	}
	return false
}

var backupPVCCommand = command{
	name:  "backup-pvc",
	short: "back up a PVC's paths (first step of a backup Job)",
	long: `Backs up each of --backup-paths with restic: initializes the repository if
it does not exist (never on a wrong password), and runs one restic backup per
path; a lock in the way is removed when it can be proven stale (restic's own
rule, or a Stow Job pod of this cluster that no longer runs, as the operator
confirms). Each snapshot is tagged with the mount path and the snapshot
identity (namespace, invoker, target). A lock held by anyone else is waited
for until the deadline, then the step fails naming the holder. Every path must lie inside the target volume
(--mount-path); extra --args may tune restic, not change what Stow decides.
With --apply-retention it then applies the --retention-* policy as
update-status does (and update-status, if it runs next, does not again).
The result goes to <output-dir>/output.json for update-status and to the
termination log; on failure the step exits non-zero with a one-line cause.
Unreadable files are a failure. Storage credentials come from the environment
(RESTIC_PASSWORD, AWS_*, ...).`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		o := &backupPVCOptions{}
		o.job.register(fs)
		fs.StringVar(&o.session, "backupsession", "", "BackupSession name (recorded as a snapshot tag)")
		fs.StringVar(&o.paths, "backup-paths", "", "comma-separated absolute paths to back up")
		fs.StringVar(&o.excludes, "exclude", "", "comma-separated restic exclude patterns")
		fs.StringVar(&o.extraArgs, "args", "", "extra restic backup arguments, space-separated")
		fs.StringVar(&o.mountPath, "mount-path", "", "where the target volume is mounted (default: the mount point holding each path, from /proc/self/mountinfo)")
		fs.BoolVar(&o.applyRetention, "apply-retention", false, "after a successful backup, apply the --retention-* policy here, as update-status would (update-status then skips it)")
		o.retention.register(fs)
		return noArgs(o.run)
	},
}

type backupPVCOptions struct {
	job                                 jobFlags
	session, paths, excludes, extraArgs string
	mountPath                           string
	applyRetention                      bool
	retention                           retentionFlags
}

func (o *backupPVCOptions) run(ctx context.Context) error {
	res := jobresult.Result{Step: "backup-pvc", Host: o.job.host()}
	fail := func(err error) error { return o.job.failStep(&res, err) }
	if err := o.job.load(); err != nil {
		return fail(err)
	}
	paths := splitList(o.paths)
	if len(paths) == 0 {
		return fail(errors.New("no --backup-paths given"))
	}
	mounts, err := o.mountsOf(paths)
	if err != nil {
		return fail(err)
	}
	extra := strings.Fields(o.extraArgs)
	if err := restic.CheckBackupArgs(extra); err != nil {
		return fail(err)
	}
	tags := o.tags()
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return fail(err)
	}
	defer closeRepo()
	logger.Printf("backing up %s of host %s to %s", strings.Join(paths, ", "), res.Host, r.Location.Display())

	b := pathBackup{r: r, opts: restic.BackupOptions{Host: res.Host, Tags: tags, Excludes: splitList(o.excludes), ExtraArgs: extra},
		mounts: mounts, policy: o.job.lockPolicy(), deadline: o.job.lockDeadline}
	var errs []string
	for i, p := range paths {
		var sum *restic.BackupSummary
		var err error
		if i == 0 {
			var opened bool
			if sum, opened, err = b.first(ctx, p, &res); !opened {
				res.StaleLocksRemoved = r.LocksRemoved
				return fail(err)
			}
		} else {
			sum, err = b.backup(ctx, p)
		}
		if msg, failed := o.record(p, sum, err, &res); failed {
			errs = append(errs, msg)
		}
	}
	if len(errs) > 0 {
		res.StaleLocksRemoved = r.LocksRemoved
		return fail(errors.New(strings.Join(errs, "; ")))
	}
	res.Duration = o.job.elapsed()
	// Retention here saves the Job a second container (and the kubelet's
	// notice of the first one's exit). Its failure is reported as
	// update-status reports it: in res.Retention, not as a failed backup,
	// and the step exits non-zero.
	var retErr error
	if o.applyRetention {
		retErr = o.retention.apply(ctx, &o.job, r, &res)
	}
	res.StaleLocksRemoved = r.LocksRemoved
	return errors.Join(o.job.finish(res, true), retErr)
}

// mountsOf maps each backup path to the mount it lies on, and refuses a
// path or mount that holds the repository: a backup must not read itself.
func (o *backupPVCOptions) mountsOf(paths []string) (map[string]string, error) {
	mounts := map[string]string{}
	for _, p := range paths {
		mount, err := o.mountOf(p)
		if err != nil {
			return nil, err
		}
		mounts[p] = mount
	}
	for _, p := range paths {
		if err := o.job.repositoryApart(mounts[p]); err != nil {
			return nil, err
		}
		if err := o.job.repositoryApart(p); err != nil {
			return nil, err
		}
	}
	return mounts, nil
}

// tags are the snapshot tags that let retention and restore-by-default find
// the snapshots of this target, and the session that took them.
func (o *backupPVCOptions) tags() []string {
	tags := []string{}
	if id, ok := o.job.identity(); ok {
		tags = append(tags, id.Tags()...)
	} else {
		logger.Printf("warning: no complete snapshot identity (namespace, invoker, target): snapshots are not tagged with one, so retention and restore-by-default will not find them")
	}
	if o.session != "" {
		tags = append(tags, "stow-backupsession="+o.session)
	}
	return tags
}

// pathBackup backs up one path of the target at a time, under the
// repository lock policy.
type pathBackup struct {
	r        *restic.Restic
	opts     restic.BackupOptions // all but MountPath, which is per path
	mounts   map[string]string
	policy   restic.LockPolicy
	deadline func() time.Time
}

func (b pathBackup) backup(ctx context.Context, p string) (sum *restic.BackupSummary, err error) {
	err = b.r.WaitForLock(ctx, "backup", b.policy, b.deadline(), func(ctx context.Context) (err error) {
		opts := b.opts
		opts.MountPath = b.mounts[p]
		sum, err = b.r.Backup(ctx, p, opts)
		return err
	})
	return sum, err
}

// first backs up the first path; it doubles as the check that the
// repository exists: it is initialized only when restic says it does not.
// opened is false when the repository could not be used, which ends the
// whole backup.
func (b pathBackup) first(ctx context.Context, p string, res *jobresult.Result) (sum *restic.BackupSummary, opened bool, err error) {
	created, err := b.r.WithRepository(ctx, func(ctx context.Context) (err error) {
		sum, err = b.backup(ctx, p)
		return err
	})
	// The repository is there when the backup ran, even if it
	// then failed on unreadable files or waited out a lock.
	var unreadable *restic.UnreadableFilesError
	opened = err == nil || errors.As(err, &unreadable) || errors.Is(err, restic.ErrLocked)
	res.RepositoryInitialized = boolPtr(opened)
	if created {
		logger.Printf("initialized repository %s", b.r.Location.Display())
	}
	return sum, opened, err
}

// record adds the snapshot of path p to res, or says why p failed: its
// backup failed, or the exclude patterns left nothing of a non-empty path.
// The other paths are still backed up.
func (o *backupPVCOptions) record(p string, sum *restic.BackupSummary, err error, res *jobresult.Result) (msg string, failed bool) {
	if err != nil {
		logger.Printf("backup of %s failed: %v", p, err)
		return oneLine(err.Error()), true
	}
	if sum.TotalFilesProcessed == 0 && o.excludes != "" && hasEntries(p) {
		err := fmt.Errorf("the exclude patterns %q left no file of %s to back up (snapshot %s is empty)", splitList(o.excludes), p, short(sum.SnapshotID))
		logger.Print(err)
		return err.Error(), true
	}
	st := sum.SnapshotStats(p)
	logger.Printf("snapshot %s of %s: %d files (%d new, %d changed), %s processed, %s added in %s",
		short(sum.SnapshotID), p, *st.FileStats.TotalFiles, *st.FileStats.NewFiles, *st.FileStats.ModifiedFiles,
		st.TotalSize, st.Uploaded, st.ProcessingTime)
	res.Snapshots = append(res.Snapshots, st)
	return "", false
}

// mountOf returns the mount path a backup path is read under, and refuses a
// path that is not inside it: the only input of a backup is the target
// volume, never the Job's own files (its environment holds the repository
// credentials), /proc, or the scratch directory.
func (o *backupPVCOptions) mountOf(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("backup path %q is not absolute", p)
	}
	p = filepath.Clean(p)
	mount := o.mountPath
	if mount == "" {
		mount = mountPointOf(p)
		if mount == p && p != "/" {
			return mount, nil // no volume mounted here: a Stash-style run by hand
		}
	}
	mount = filepath.Clean(mount)
	rel, err := filepath.Rel(mount, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || mount == "/" {
		return "", fmt.Errorf("backup path %s is outside the target volume mounted at %s: only the target volume is backed up", p, mount)
	}
	scratch := filepath.Clean(o.job.scratchDir)
	if p == scratch || strings.HasPrefix(p, scratch+"/") || scratch == mount || strings.HasPrefix(scratch, p+"/") {
		return "", fmt.Errorf("backup path %s overlaps the scratch directory %s", p, scratch)
	}
	return mount, nil
}

// mountPointOf is the deepest mount point holding p (from mountinfo), which
// in a Job is the target volume's mount path. The root mount does not count:
// then p itself is taken as the mount, as for a Stash snapshot.
func mountPointOf(p string) string {
	p = filepath.Clean(p)
	best := ""
	f, err := os.Open("/proc/self/mountinfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			mp := unescapeMountinfo(fields[4])
			if mp == "/" {
				continue
			}
			if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
				best = mp
			}
		}
	}
	if best == "" {
		return p
	}
	return best
}

// unescapeMountinfo decodes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var n int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &n); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
