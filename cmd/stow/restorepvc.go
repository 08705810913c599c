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
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

var restorePVCCommand = command{
	name:  "restore-pvc",
	short: "restore snapshots into a PVC (first step of a restore Job)",
	long: `Restores into --mount-path, relative to it (never to "/"): a snapshot path
taken under mount path M lands at <mount-path>/<path relative to M>.
With --snapshots (ids or "latest"), those snapshots are restored. Otherwise,
with --restore-paths, the latest snapshot of the source host holding each path.
Otherwise the latest snapshot of every path the source host (--source-hostname,
else --hostname, else host-0) has. Finding nothing to restore is a failure.
--include/--exclude filter files; paths and patterns with ".." are refused.`,
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
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageError("unexpected arguments %q", args)
			}
			return o.run(ctx)
		}
	},
}

type restorePVCOptions struct {
	job                                  jobFlags
	session, mountPath, sourceHost       string
	paths, snapshots, includes, excludes string
	extraArgs                            string
}

func (o *restorePVCOptions) run(ctx context.Context) error {
	start := time.Now()
	res := jobresult.Result{Step: "restore-pvc", Host: o.job.host()}
	fail := func(err error) error {
		res.Error = oneLine(err.Error())
		res.Duration = time.Since(start).Round(time.Millisecond).String()
		return o.job.finish(res, true)
	}
	if !filepath.IsAbs(o.mountPath) {
		return fail(fmt.Errorf("--mount-path %q is not absolute", o.mountPath))
	}
	includes, excludes := splitList(o.includes), splitList(o.excludes)
	for _, p := range append(append(splitList(o.paths), includes...), excludes...) {
		if err := restic.CheckNoParent(p); err != nil {
			return fail(err)
		}
	}
	source := o.sourceHost
	if source == "" {
		source = res.Host
	}
	r, closeRepo, err := o.job.openRepository()
	if err != nil {
		return fail(err)
	}
	defer closeRepo()
	base := restic.RestoreOptions{
		Host: source, MountPath: o.mountPath, Includes: includes, Excludes: excludes,
		ExtraArgs: strings.Fields(o.extraArgs),
	}
	var plan []restic.RestoreOptions
	switch {
	case o.snapshots != "":
		for _, s := range splitList(o.snapshots) {
			p := base
			p.Snapshot = s
			plan = append(plan, p)
		}
	case o.paths != "":
		for _, path := range splitList(o.paths) {
			p := base
			p.Snapshot, p.Path = "latest", path
			plan = append(plan, p)
		}
	default:
		paths, err := hostPaths(ctx, r, source)
		if err != nil {
			return fail(err)
		}
		for _, path := range paths {
			p := base
			p.Snapshot, p.Path = "latest", path
			plan = append(plan, p)
		}
	}
	logger.Printf("restoring %d snapshot selection(s) of host %s into %s", len(plan), source, o.mountPath)
	for _, p := range plan {
		done, err := r.Restore(ctx, p)
		for _, d := range done {
			logger.Printf("restored %s of snapshot %s into %s", d.Path, short(d.SnapshotID), d.Target)
			res.Snapshots = append(res.Snapshots, v1beta1.SnapshotStats{Name: d.SnapshotID, Path: d.Path})
		}
		if err != nil {
			return fail(err)
		}
	}
	if len(res.Snapshots) == 0 {
		return fail(fmt.Errorf("nothing was restored for host %s", source))
	}
	res.Duration = time.Since(start).Round(time.Millisecond).String()
	return o.job.finish(res, true)
}

// hostPaths lists the distinct snapshot paths of host; none is an error:
// a restore with no rules must restore something or fail.
func hostPaths(ctx context.Context, r *restic.Restic, host string) ([]string, error) {
	snaps, err := r.Snapshots(ctx, restic.SnapshotFilter{Host: host})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var paths []string
	for _, s := range snaps {
		for _, p := range s.Paths {
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("no snapshot found for host " + host)
	}
	sort.Strings(paths)
	return paths, nil
}
