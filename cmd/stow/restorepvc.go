package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

var restorePVCCommand = command{
	name:  "restore-pvc",
	short: "restore snapshots into a PVC (first step of a restore Job)",
	long: `Restores into --mount-path, relative to it (never to "/"): a snapshot path
taken under mount path M lands at <mount-path>/<path relative to M>.
With --snapshots (ids or "latest" of the source host), those snapshots are
restored. Otherwise, with --restore-paths, the latest snapshot of the source
host (--source-hostname, else --hostname, else host-0) holding each path.
"latest" and --restore-paths take the newest snapshot tagged with the
target's identity when the host has one, else the newest of the host (whose
owner the log names): in a repository shared by several PVCs, all host-0,
the host's newest may be another PVC's.
Otherwise, with --source-hostname, the latest snapshot of every path of that
host (Stash's meaning of a rule with only a sourceHost).
Otherwise the latest snapshot of this target: the snapshots the operator
resolved from the target's Snapshot records (STOW_RESOLVED_SNAPSHOTS), else,
for every path, the newest snapshot tagged with the target's identity (its namespace and PVC; any
invoker), whatever the host; snapshots without that identity (taken by Stash,
by hand, or by another PVC) are never chosen. Finding nothing to restore is a
failure. --include/--exclude filter files; paths and patterns with ".." are
refused, so are restore targets that run through a symbolic link, and extra
--args that would change the target, host or selection.`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		o := &restorePVCOptions{}
		o.job.register(fs)
		fs.StringVar(&o.session, "restoresession", "", "RestoreSession name")
		fs.StringVar(&o.mountPath, "mount-path", v1beta1.DefaultMountPath, "where the target volume is mounted")
		fs.StringVar(&o.sourceHost, "source-hostname", "", "host whose snapshots are restored (default: --hostname)")
		fs.StringVar(&o.paths, "restore-paths", "", "comma-separated snapshot paths to restore (latest snapshot of each)")
		fs.StringVar(&o.snapshots, "snapshots", "", "comma-separated snapshot ids or \"latest\"")
		fs.StringVar(&o.includes, "include", "", "comma-separated restic include patterns")
		fs.StringVar(&o.excludes, "exclude", "", "comma-separated restic exclude patterns")
		fs.StringVar(&o.extraArgs, "args", "", "extra restic restore arguments, space-separated")
		return noArgs(o.run)
	},
}

type restorePVCOptions struct {
	job                                  jobFlags
	session, mountPath, sourceHost       string
	paths, snapshots, includes, excludes string
	extraArgs                            string
}

func (o *restorePVCOptions) run(ctx context.Context) error {
	res := jobresult.Result{Step: "restore-pvc", Host: o.job.host()}
	fail := func(err error) error { return o.job.failStep(&res, err) }
	if err := o.job.load(); err != nil {
		return fail(err)
	}
	includes, excludes, extra, err := o.checkFlags()
	if err != nil {
		return fail(err)
	}
	source := o.sourceHost
	if source == "" {
		source = res.Host
	}
	mounts := append([]string{o.mountPath}, o.job.extraMounts()...)
	for _, m := range mounts {
		if err := o.job.repositoryApart(m); err != nil {
			return fail(err)
		}
		if err := checkWritable(m); err != nil {
			return fail(err)
		}
	}
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return fail(err)
	}
	defer closeRepo()
	asOf := o.job.asOf()
	base := restic.RestoreOptions{
		Host: source, MountPath: o.mountPath, ExtraMounts: mounts[1:], Includes: includes, Excludes: excludes, ExtraArgs: extra, AsOf: asOf,
	}
	plan, what, err := o.plan(ctx, r, base)
	if err != nil {
		return fail(err)
	}
	logger.Printf("restoring %d snapshot selection(s) of %s into %s", len(plan), what, strings.Join(mounts, ", "))
	noFile, err := o.restore(ctx, r, plan, &res)
	if err != nil {
		return fail(err)
	}
	if len(res.Snapshots) == 0 {
		return fail(fmt.Errorf("nothing was restored for %s", what))
	}
	if len(includes)+len(excludes) > 0 && noFile {
		return fail(fmt.Errorf("the include/exclude patterns (include %q, exclude %q) matched no file of the chosen snapshots: nothing was restored", includes, excludes))
	}
	if !asOf.IsZero() {
		logger.Printf("restored as of %s: the newest snapshots taken at or before it", asOf.UTC().Format(time.RFC3339))
	}
	res.Duration = o.job.elapsed()
	return o.job.finish(res, true)
}

// checkFlags refuses flags that would restore outside the mount path or
// change what the operator chose, before the repository is opened. It
// returns the include and exclude patterns and the extra restic arguments.
func (o *restorePVCOptions) checkFlags() (includes, excludes, extra []string, err error) {
	if !filepath.IsAbs(o.mountPath) {
		return nil, nil, nil, fmt.Errorf("--mount-path %q is not absolute", o.mountPath)
	}
	includes, excludes = splitList(o.includes), splitList(o.excludes)
	for _, p := range append(append(splitList(o.paths), includes...), excludes...) {
		if err := restic.CheckNoParent(p); err != nil {
			return nil, nil, nil, err
		}
	}
	extra = strings.Fields(o.extraArgs)
	if err := restic.CheckRestoreArgs(extra); err != nil {
		return nil, nil, nil, err
	}
	return includes, excludes, extra, nil
}

// plan is the restores to run, each base with its selection, and what they
// restore (for messages); the flags choose the selection as the command's
// help describes.
func (o *restorePVCOptions) plan(ctx context.Context, r *restic.Restic, base restic.RestoreOptions) ([]restic.RestoreOptions, string, error) {
	var plan []restic.RestoreOptions
	switch {
	case o.snapshots != "":
		for _, s := range splitList(o.snapshots) {
			p := base
			p.Snapshot = s
			if s == "latest" {
				snap, err := o.latestOf(ctx, r, base, "")
				if err != nil {
					return nil, "", err
				}
				p.Resolved = snap
			}
			plan = append(plan, p)
		}
	case o.paths != "":
		for _, path := range splitList(o.paths) {
			p := base
			snap, err := o.latestOf(ctx, r, base, path)
			if err != nil {
				return nil, "", err
			}
			p.Resolved, p.Path = snap, path
			plan = append(plan, p)
		}
	case o.sourceHost != "":
		// A rule naming only a sourceHost: Stash's meaning, the latest
		// snapshot of that host for each of its paths.
		latest, err := latestPerPath(ctx, r, restic.SnapshotFilter{Host: base.Host}, base.AsOf)
		if err != nil {
			return nil, "", err
		}
		if len(latest) == 0 {
			return nil, "", errors.New("no snapshot found for host " + base.Host + takenBy(base.AsOf))
		}
		plan = planLatest(base, latest)
	default:
		return o.targetPlan(ctx, r, base)
	}
	return plan, "host " + base.Host, nil
}

// latestOf is the snapshot a rule's "latest" means: the newest of the source
// host (holding path, when set) taken at or before base.AsOf, among those
// tagged with this target's identity when there are any. Every stand-alone
// PVC is host-0 and mounted at the same path, so in a repository shared by
// several PVCs "the latest of the host" alone is whichever PVC was backed up
// last, possibly another namespace's. Without a snapshot of this target,
// the newest of the host is taken, as Stash does (a repository written by
// Stash, or a clone from another PVC), and the log names whose it is.
func (o *restorePVCOptions) latestOf(ctx context.Context, r *restic.Restic, base restic.RestoreOptions, path string) (*restic.Snapshot, error) {
	f := restic.SnapshotFilter{Host: base.Host}
	if path != "" {
		f.Paths = []string{path}
	}
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	snaps = restic.TakenBy(snaps, base.AsOf)
	if len(snaps) == 0 {
		return nil, errors.New("no snapshot found for host " + base.Host + pathNote(path) + takenBy(base.AsOf))
	}
	id, known := o.job.identity()
	var own, newest *restic.Snapshot
	for i := range snaps {
		s := &snaps[i]
		if newest == nil || s.Time.After(newest.Time) {
			newest = s
		}
		if sid, ok := identity.FromTags(s.Tags); known && ok && sid.Namespace == id.Namespace && sid.TargetKind == id.TargetKind && sid.TargetName == id.TargetName &&
			(own == nil || s.Time.After(own.Time)) {
			own = s
		}
	}
	if own != nil {
		return own, nil
	}
	if sid, ok := identity.FromTags(newest.Tags); ok && known {
		logger.Printf("no snapshot of %s %s/%s matches host %s%s: restoring snapshot %s of %s %s/%s, the newest of the host (Stash's meaning of the rule)",
			id.TargetKind, id.Namespace, id.TargetName, base.Host, pathNote(path), short(newest.ID), sid.TargetKind, sid.Namespace, sid.TargetName)
	}
	return newest, nil
}

// pathNote is " and path <p>" for messages, or "" without a path.
func pathNote(p string) string {
	if p == "" {
		return ""
	}
	return " and path " + p
}

// targetPlan restores the latest snapshot of each path of this target: the
// ones the operator resolved, else the newest tagged with the target's
// identity, so a snapshot of another PVC or taken by Stash is never chosen.
func (o *restorePVCOptions) targetPlan(ctx context.Context, r *restic.Restic, base restic.RestoreOptions) ([]restic.RestoreOptions, string, error) {
	id, ok := o.job.identity()
	if !ok {
		return nil, "", errors.New("no rules and no target identity (namespace, target kind and name): cannot tell which snapshots are this PVC's; name snapshots, paths or a sourceHost in a rule")
	}
	filter := identity.TargetFilter(id.Namespace, id.TargetKind, id.TargetName)
	what := fmt.Sprintf("%s %s/%s", id.TargetKind, id.Namespace, id.TargetName)
	latest := o.job.resolvedSnapshots()
	if len(latest) > 0 {
		logger.Printf("restoring the snapshots the operator found in the target's Snapshot records (no listing of the repository)")
	} else {
		var err error
		if latest, err = latestPerPath(ctx, r, restic.SnapshotFilter{Tags: []string{filter}}, base.AsOf); err != nil {
			return nil, "", err
		}
	}
	if len(latest) == 0 {
		return nil, "", fmt.Errorf("no snapshot of %s%s in the repository (snapshots tagged %s); snapshots without Stow's identity, e.g. taken by Stash or of another PVC, are restored only when a rule names them (snapshots, paths or sourceHost)", what, takenBy(base.AsOf), filter)
	}
	return planLatest(base, latest), what, nil
}

// planLatest is one restore per path, each from the snapshot chosen for it.
func planLatest(base restic.RestoreOptions, latest []pathSnapshot) []restic.RestoreOptions {
	plan := make([]restic.RestoreOptions, 0, len(latest))
	for i := range latest {
		p := base
		p.Resolved, p.Path = &latest[i].Snapshot, latest[i].Path
		plan = append(plan, p)
	}
	return plan
}

// restore runs the plan, each restore under the repository lock policy, and
// records every restored snapshot path in res, also those of a restore that
// failed part-way. It reports whether no restored path held a file.
func (o *restorePVCOptions) restore(ctx context.Context, r *restic.Restic, plan []restic.RestoreOptions, res *jobresult.Result) (noFile bool, err error) {
	policy, deadline := o.job.lockPolicy(), o.job.lockDeadline()
	noFile = true
	for _, p := range plan {
		var done []restic.RestoredPath
		err := r.WaitForLock(ctx, "restore", policy, deadline, func(ctx context.Context) (err error) {
			done, err = r.Restore(ctx, p)
			return err
		})
		for _, d := range done {
			logger.Printf("restored %s of snapshot %s into %s (%d files)", d.Path, short(d.SnapshotID), d.Target, d.Files)
			noFile = noFile && d.Files == 0
			res.Snapshots = append(res.Snapshots, v1beta1.SnapshotStats{Name: d.SnapshotID, Path: d.Path})
		}
		if err != nil {
			return noFile, err
		}
	}
	return noFile, nil
}

// takenBy is " taken at or before <asOf>" for messages, or "" without asOf.
func takenBy(asOf time.Time) string {
	if asOf.IsZero() {
		return ""
	}
	return " taken at or before " + asOf.UTC().Format(time.RFC3339)
}

// pathSnapshot is the snapshot a path is restored from.
type pathSnapshot struct {
	Path     string
	Snapshot restic.Snapshot
}

// latestPerPath lists the snapshots f selects, once, and returns for each
// distinct path the newest snapshot that holds it (taken at or before asOf,
// unless zero), ordered by path.
func latestPerPath(ctx context.Context, r *restic.Restic, f restic.SnapshotFilter, asOf time.Time) ([]pathSnapshot, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	snaps = restic.TakenBy(snaps, asOf)
	newest := map[string]restic.Snapshot{}
	for _, s := range snaps {
		for _, p := range s.Paths {
			if cur, ok := newest[p]; !ok || s.Time.After(cur.Time) {
				newest[p] = s
			}
		}
	}
	out := make([]pathSnapshot, 0, len(newest))
	for p, s := range newest {
		out = append(out, pathSnapshot{Path: p, Snapshot: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
