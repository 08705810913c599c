package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/restic"
)

// repoFlags locate a repository for the user commands.
type repoFlags struct {
	repo, passwordFile string
	insecureTLS        bool
}

func (f *repoFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.repo, "repo", "", "repository: a path or a restic URL such as s3:http://127.0.0.1:9000/bucket (default $RESTIC_REPOSITORY)")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the repository password (default $RESTIC_PASSWORD)")
	fs.BoolVar(&f.insecureTLS, "insecure-tls", false, "skip TLS certificate verification of the backend")
}

func (f *repoFlags) open() (*restic.Restic, func(), error) {
	repo := f.repo
	if repo == "" {
		repo = os.Getenv("RESTIC_REPOSITORY")
	}
	if repo == "" {
		return nil, nil, usageError("--repo is required (or set RESTIC_REPOSITORY)")
	}
	b, err := restic.ParseRepositoryURL(repo)
	if err != nil {
		return nil, nil, err
	}
	if b.S3 != nil {
		b.S3.InsecureTLS = f.insecureTLS
	}
	secrets := envSecrets()
	if f.passwordFile != "" {
		pw, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading password file: %v", err)
		}
		secrets[restic.KeyResticPassword] = strings.TrimRight(string(pw), "\r\n")
	}
	if secrets[restic.KeyResticPassword] == "" {
		return nil, nil, usageError("no password: pass --password-file or set RESTIC_PASSWORD")
	}
	dir, err := os.MkdirTemp("", "stow-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	loc, err := restic.NewLocation(b, secrets, dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	bin, err := restic.FindBinary()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	prio, err := restic.PriorityFromEnv(os.Getenv)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	r := &restic.Restic{Binary: bin, Location: loc, Priority: prio}
	if os.Getenv("STOW_VERBOSE") != "" {
		r.Logf = logger.Printf
	}
	if cache, err := os.UserCacheDir(); err == nil {
		r.CacheDir = filepath.Join(cache, "restic")
	}
	return r, cleanup, nil
}

var snapshotsCommand = command{
	name:  "snapshots",
	short: "list the snapshots of a repository",
	long:  `Lists the snapshots of a repository, newest last, as a table or as JSON.`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		var rf repoFlags
		rf.register(fs)
		var host string
		var asJSON bool
		fs.StringVar(&host, "host", "", "only snapshots of this host")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		return noArgs(func(ctx context.Context) error {
			r, cleanup, err := rf.open()
			if err != nil {
				return err
			}
			defer cleanup()
			snaps, err := r.Snapshots(ctx, restic.SnapshotFilter{Host: host})
			if err != nil {
				return err
			}
			return printSnapshots(os.Stdout, snaps, asJSON)
		})
	},
}

func printSnapshots(w io.Writer, snaps []restic.Snapshot, asJSON bool) error {
	if asJSON {
		if snaps == nil {
			snaps = []restic.Snapshot{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(snaps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tPATHS\tMOUNT")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Hostname, strings.Join(s.Paths, ","), s.MountPath())
	}
	return tw.Flush()
}

var backupCommand = command{
	name:  "backup",
	short: "back up directories into a repository (initialized if missing)",
	long: `Backs up each DIR into the repository, one snapshot per directory, tagged
with the directory as its mount path so that "stow restore --target" puts its
contents directly into the target. The repository is initialized when it does
not exist; a wrong password is an error, never a new repository. Unreadable
files make the command fail. --read-concurrency, --pack-size and --compression
tune restic (see "make bench").

  stow backup --repo /path/repo --password-file pw DIR...`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		var rf repoFlags
		rf.register(fs)
		var host string
		var excludes, tags []string
		var tuning resticTuning
		tuning.register(fs)
		fs.StringVar(&host, "host", "", "restic host recorded in the snapshot (default: this machine's name)")
		fs.StringSliceVar(&excludes, "exclude", nil, "exclude pattern (repeatable or comma-separated)")
		fs.StringSliceVar(&tags, "tag", nil, "extra snapshot tag (repeatable)")
		return func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return usageError("no directory to back up")
			}
			extra, err := tuning.args(os.Getenv)
			if err != nil {
				return err
			}
			r, cleanup, err := rf.open()
			if err != nil {
				return err
			}
			defer cleanup()
			var errs []error
			for _, dir := range args {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return err
				}
				var sum *restic.BackupSummary
				// The backup itself is the probe: no extra restic run (and key
				// derivation) just to learn that the repository exists.
				created, err := r.WithRepository(ctx, func(ctx context.Context) (err error) {
					sum, err = r.Backup(ctx, abs, restic.BackupOptions{Host: host, MountPath: abs, Excludes: excludes, Tags: tags, ExtraArgs: extra})
					return err
				})
				if created {
					fmt.Printf("initialized repository %s\n", r.Location.Display())
				}
				if errors.Is(err, restic.ErrNoRepository) || errors.Is(err, restic.ErrWrongPassword) {
					return err // the same for every directory
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				st := sum.SnapshotStats(abs)
				fmt.Printf("snapshot %s of %s: %d files (%d new, %d changed, %d unmodified), %s processed, %s added, %s\n",
					short(sum.SnapshotID), abs, *st.FileStats.TotalFiles, *st.FileStats.NewFiles, *st.FileStats.ModifiedFiles,
					*st.FileStats.UnmodifiedFiles, st.TotalSize, st.Uploaded, st.ProcessingTime)
			}
			return errors.Join(errs...)
		}
	},
}

var restoreCommand = command{
	name:  "restore",
	short: "restore a snapshot into a directory",
	long: `Restores a snapshot (an id, or "latest" of --host and --path) into --target.
Files land relative to the target: a snapshot of directory D taken by
"stow backup D" restores D's contents into the target itself.

Into an empty or new target, without --path, --include or --exclude, restic
restores the whole snapshot into a .stow-restore-* directory inside the target
while a second restic run looks up the snapshot's paths, and the contents are
then moved into place (renames, no copies): the lookup costs no time. A restore
interrupted by a kill can leave that directory behind; delete it.

  stow restore --repo /path/repo --password-file pw --snapshot latest --target DIR`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		var rf repoFlags
		rf.register(fs)
		var snapshot, target, host, path string
		var includes, excludes []string
		fs.StringVar(&snapshot, "snapshot", "latest", "snapshot id or \"latest\"")
		fs.StringVar(&target, "target", "", "directory to restore into")
		fs.StringVar(&host, "host", "", "with latest: only snapshots of this host")
		fs.StringVar(&path, "path", "", "restore only this snapshot path (with latest: the latest snapshot holding it)")
		fs.StringSliceVar(&includes, "include", nil, "include pattern (repeatable)")
		fs.StringSliceVar(&excludes, "exclude", nil, "exclude pattern (repeatable)")
		return noArgs(func(ctx context.Context) error {
			if target == "" {
				return usageError("--target is required")
			}
			abs, err := filepath.Abs(target)
			if err != nil {
				return err
			}
			r, cleanup, err := rf.open()
			if err != nil {
				return err
			}
			defer cleanup()
			done, err := r.RestoreStaged(ctx, restic.RestoreOptions{Snapshot: snapshot, Host: host, Path: path,
				Includes: includes, Excludes: excludes, MountPath: abs})
			for _, d := range done {
				fmt.Printf("restored %s of snapshot %s into %s\n", d.Path, short(d.SnapshotID), d.Target)
			}
			return err
		})
	},
}
