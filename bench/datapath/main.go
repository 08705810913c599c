// Command datapath benchmarks Stow's data path against bare restic on
// generated, fixed-seed data sets: full backup, incremental backup after a
// 1% change, and restore, each timed with the rusage of the child; plus
// `cat` of the set (cold after dropping caches, and warm) as the read limit.
// Stow is measured twice: as a session runs it (the data step of the Job,
// `stow backup-pvc` and `stow restore-pvc`, with the Job's arguments and
// environment, see job.go) and as the command-line tool (`stow backup`,
// `stow restore`). It also runs `stow backup` with restic tuning flags to
// show their effect.
//
// Configuration is by environment (hack/bench.sh sets it):
//
//	BENCH_SCALE        small (a few MB, the harness check) or full (the sets)
//	BENCH_RUNS         runs per measurement (default 3)
//	BENCH_SETS         comma list of mixed,big,tiny (default all)
//	BENCH_TUNE         stow tuning variants: comma list of rc1,rc4,rc8,pack4,pack64,comp-off,comp-max, or none
//	BENCH_TUNE_SETS    sets the variants run on (default mixed)
//	BENCH_DROP_CACHES  0 skips dropping the page cache (and the cold read)
//	BENCH_DIR          work directory (default _output/bench)
//	BENCH_OUT          results file (default bench/results.json; results.md next to it)
//	BENCH_LABEL        label printed on the report (default for a scale other than full: a smoke-run warning)
//	STOW_BIN           the stow binary, with STOW_RESTIC next to it as restic (a Job step runs that one)
//	STOW_RESTIC        the restic binary
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stowhq/stow/bench/internal/results"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/restic"
)

// toolKind is how a tool backs up and restores.
type toolKind int

const (
	bareRestic toolKind = iota
	stowCLI             // stow backup, stow restore
	stowJob             // the data steps of a session's Job: stow backup-pvc, stow restore-pvc
)

// tool is one way of backing up and restoring: bare restic, Stow as a
// session runs it, or Stow's command line, possibly with restic tuning flags.
type tool struct {
	name  string
	kind  toolKind
	flags []string // extra `stow backup` flags
}

// The tools at default settings. Their names are the report's rows.
var (
	resticTool  = tool{name: results.BaselineTool, kind: bareRestic}
	sessionTool = tool{name: "stow session (Job: backup-pvc, restore-pvc)", kind: stowJob}
	cliTool     = tool{name: "stow CLI (backup, restore)", kind: stowCLI}
)

var variants = map[string]tool{
	"rc1":      {name: "stow CLI --read-concurrency 1", kind: stowCLI, flags: []string{"--read-concurrency", "1"}},
	"rc4":      {name: "stow CLI --read-concurrency 4", kind: stowCLI, flags: []string{"--read-concurrency", "4"}},
	"rc8":      {name: "stow CLI --read-concurrency 8", kind: stowCLI, flags: []string{"--read-concurrency", "8"}},
	"pack4":    {name: "stow CLI --pack-size 4", kind: stowCLI, flags: []string{"--pack-size", "4"}},
	"pack64":   {name: "stow CLI --pack-size 64", kind: stowCLI, flags: []string{"--pack-size", "64"}},
	"comp-off": {name: "stow CLI --compression off", kind: stowCLI, flags: []string{"--compression", "off"}},
	"comp-max": {name: "stow CLI --compression max", kind: stowCLI, flags: []string{"--compression", "max"}},
}

// benchPassword is the repositories' password.
const benchPassword = "bench-password"

type config struct {
	scale, dir, out, label string
	runs                   int
	sets, tuneSets         []string
	tune                   []tool
	dropCaches             bool
	stowBin, resticBin     string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench/datapath:", err)
		os.Exit(1)
	}
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func loadConfig() (*config, error) {
	c := &config{
		scale:      getenv("BENCH_SCALE", "full"),
		dir:        getenv("BENCH_DIR", "_output/bench"),
		out:        getenv("BENCH_OUT", "bench/results.json"),
		label:      os.Getenv("BENCH_LABEL"),
		sets:       list(getenv("BENCH_SETS", "mixed,big,tiny")),
		tuneSets:   list(getenv("BENCH_TUNE_SETS", "mixed")),
		dropCaches: getenv("BENCH_DROP_CACHES", "1") != "0",
		stowBin:    os.Getenv("STOW_BIN"),
	}
	var err error
	if c.runs, err = strconv.Atoi(getenv("BENCH_RUNS", "3")); err != nil || c.runs < 1 {
		return nil, fmt.Errorf("BENCH_RUNS=%q: want a positive number", os.Getenv("BENCH_RUNS"))
	}
	if t := getenv("BENCH_TUNE", "rc1,rc4,pack64,comp-off"); t != "none" {
		for _, name := range list(t) {
			v, ok := variants[name]
			if !ok {
				return nil, fmt.Errorf("BENCH_TUNE: unknown variant %q", name)
			}
			c.tune = append(c.tune, v)
		}
	}
	if c.stowBin == "" {
		return nil, fmt.Errorf("STOW_BIN is not set (hack/bench.sh builds stow and sets it)")
	}
	if c.stowBin, err = filepath.Abs(c.stowBin); err != nil {
		return nil, err
	}
	if c.resticBin, err = restic.FindBinary(); err != nil {
		return nil, err
	}
	// The session tool runs Job steps, which run the restic next to stow.
	if sibling := filepath.Join(filepath.Dir(c.stowBin), "restic"); !samePath(sibling, c.resticBin) {
		return nil, fmt.Errorf("%s is not %s: a Job step runs the restic next to stow (hack/bench.sh links it)", sibling, c.resticBin)
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return nil, err
	}
	return c, nil
}

func run(ctx context.Context) error {
	c, err := loadConfig()
	if err != nil {
		return err
	}
	all, err := specs(c.scale)
	if err != nil {
		return err
	}
	var sets []setSpec
	for _, s := range all {
		if slices.Contains(c.sets, s.Name) {
			sets = append(sets, s)
		}
	}
	if len(sets) == 0 {
		return fmt.Errorf("BENCH_SETS=%q names no set (mixed, big, tiny)", strings.Join(c.sets, ","))
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "data"), 0o755); err != nil {
		return err
	}
	pw := filepath.Join(c.dir, "password")
	if err := os.WriteFile(pw, []byte(benchPassword+"\n"), 0o600); err != nil {
		return err
	}
	resticVersion, err := exec.Command(c.resticBin, "version").Output()
	if err != nil {
		return fmt.Errorf("restic version: %v", err)
	}
	f, err := results.Load(c.out)
	if err != nil {
		return err
	}
	prevStow := f.Versions.Stow
	f.Machine = results.DetectMachine()
	f.Versions = results.Versions{Go: runtime.Version(), Restic: strings.TrimSpace(string(resticVersion)), Stow: results.StowVersion()}
	label := c.label
	if label == "" && c.scale != "full" {
		label = "smoke run at " + c.scale + " scale — not the issue's measurement"
	}
	d := &results.DataPath{Started: time.Now(), Scale: c.scale, Label: label, Runs: c.runs,
		StowTools: []string{sessionTool.name, cliTool.name}}
	b := &bench{cfg: c, d: d, pw: pw, index: map[[3]string]int{}}
	if os.Getenv("BENCH_NICE") == "1" {
		b.note("ran at nice 19, idle IO class (BENCH_NICE=1): other load on the machine was favoured")
	}
	if c.dropCaches {
		if err := dropCaches(); err != nil {
			b.note("cold reads skipped: cannot drop the page cache (%v); run as root for them", err)
			c.dropCaches = false
		}
	} else {
		b.note("cold reads skipped: BENCH_DROP_CACHES=0")
	}
	for _, s := range sets {
		ds := newDataSet(s, filepath.Join(c.dir, "data"))
		start := time.Now()
		gen, err := ds.ensure()
		if err != nil {
			return fmt.Errorf("generating set %s: %v", s.Name, err)
		}
		if gen {
			logf("generated set %s (%d files, %.1f MiB) in %.1fs", s.Name, s.Files, float64(s.Bytes)/(1<<20), time.Since(start).Seconds())
		}
		d.Sets = append(d.Sets, results.Set{Name: s.Name, Description: s.Description, Files: s.Files, Bytes: s.Bytes, Seed: s.Seed})
		tools := []tool{resticTool, sessionTool, cliTool}
		if slices.Contains(c.tuneSets, s.Name) {
			tools = append(tools, c.tune...)
		}
		for r := 0; r < c.runs; r++ {
			if err := b.readLimit(ctx, ds); err != nil {
				return err
			}
			// Rotate the order per run so drift (other load, a warming
			// disk) does not always favour the same tool.
			for i := range tools {
				t := tools[(i+r)%len(tools)]
				if err := b.cycle(ctx, ds, t, r == 0); err != nil {
					return fmt.Errorf("set %s, %s, run %d: %v", s.Name, t.name, r+1, err)
				}
			}
		}
	}
	keepUnmeasured(d, f.DataPath, prevStow, all)
	f.DataPath = d
	if err := f.Save(c.out); err != nil {
		return err
	}
	md := strings.TrimSuffix(c.out, filepath.Ext(c.out)) + ".md"
	if err := os.WriteFile(md, []byte(f.Markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", c.out, md)
	return nil
}

// keepUnmeasured carries over from prev, the report this run replaces, the
// sets of the same scale that this run did not measure (BENCH_SETS), so a
// run of some sets does not erase the others; a note says when and with
// which stow they were measured. Before sessions were measured, "stow" was
// the command-line tool: its rows are renamed accordingly.
func keepUnmeasured(d, prev *results.DataPath, prevStow string, all []setSpec) {
	if prev == nil || prev.Scale != d.Scale || prev.Label != "" || d.Label != "" {
		return
	}
	measured := map[string]bool{}
	for _, s := range d.Sets {
		measured[s.Name] = true
	}
	var sets []results.Set
	for _, spec := range all {
		for _, s := range d.Sets {
			if s.Name == spec.Name {
				sets = append(sets, s)
			}
		}
		if measured[spec.Name] {
			continue
		}
		for _, s := range prev.Sets {
			if s.Name != spec.Name {
				continue
			}
			sets = append(sets, s)
			for _, m := range prev.Measurements {
				if m.Set != s.Name {
					continue
				}
				if len(prev.StowTools) == 0 {
					if m.Tool == "stow" {
						m.Tool = cliTool.name
					} else if rest, ok := strings.CutPrefix(m.Tool, "stow --"); ok {
						m.Tool = "stow CLI --" + rest
					}
				}
				d.Measurements = append(d.Measurements, m)
			}
			when := prev.Started.UTC().Format("2006-01-02 15:04 UTC")
			d.Notes = append(d.Notes, fmt.Sprintf("set %s not rerun (BENCH_SETS): its rows are from the run of %s (%d runs), stow %s", s.Name, when, prev.Runs, prevStow))
			for _, n := range prev.Notes {
				if strings.HasPrefix(n, "set "+s.Name+" not rerun") {
					d.Notes[len(d.Notes)-1] = n // measured even earlier
				}
			}
		}
	}
	d.Sets = sets
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

type bench struct {
	cfg      *config
	d        *results.DataPath
	pw       string // the password file (benchPassword; the Job steps get it as RESTIC_PASSWORD)
	index    map[[3]string]int
	template string // an empty initialized repository
}

// freshRepo puts an empty repository at repo.
func (b *bench) freshRepo(ctx context.Context, env []string, repo string) error {
	if b.template == "" {
		t := filepath.Join(b.cfg.dir, "template-repo")
		if err := os.RemoveAll(t); err != nil {
			return err
		}
		if _, err := measure(ctx, env, b.cfg.resticBin, "--repo", t, "--password-file", b.pw, "--no-cache", "init"); err != nil {
			return err
		}
		b.template = t
	}
	return copyTree(b.template, repo)
}

func (b *bench) note(format string, a ...any) {
	b.d.Notes = append(b.d.Notes, fmt.Sprintf(format, a...))
	logf(format, a...)
}

func (b *bench) record(set, tool, op string, r results.Run) {
	k := [3]string{set, tool, op}
	i, ok := b.index[k]
	if !ok {
		i = len(b.d.Measurements)
		b.index[k] = i
		b.d.Measurements = append(b.d.Measurements, results.Measurement{Set: set, Tool: tool, Op: op})
	}
	b.d.Measurements[i].Runs = append(b.d.Measurements[i].Runs, r)
	logf("%-8s %-28s %-8s %7.2fs  %6.0f MiB  cpu %.1fs", set, tool, op, r.WallS, float64(r.MaxRSSKiB)/1024, r.UserS+r.SysS)
}

// settle puts the machine in the same state before every timed backup or
// restore: dirty pages written back, the page cache dropped, then the
// operation's inputs (data set, repository, restic cache) read back in. Both
// tools then start from a warm cache of what they read and an empty one of
// what they write. Without it the run order decided the result: on this VM
// a page cache already full of an earlier run's output made the next
// restore's writes cost 3-4x the system time (measured: 15 s vs 7 s for
// the same restic restore).
func (b *bench) settle(ctx context.Context, inputs ...string) error {
	if !b.cfg.dropCaches {
		syscall.Sync()
		return nil
	}
	if err := dropCaches(); err != nil {
		return fmt.Errorf("dropping caches: %v", err)
	}
	for _, dir := range inputs {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue
		}
		if _, err := measure(ctx, []string{"PATH=" + os.Getenv("PATH")}, "sh", "-c", catScript, "sh", dir); err != nil {
			return err
		}
	}
	return nil
}

// catScript reads every file under $1 once.
const catScript = `find "$1" -type f -print0 | xargs -0 -r cat > /dev/null`

// readLimit times `cat` of every file of the set, cold (after dropping
// caches) when permitted, then warm.
func (b *bench) readLimit(ctx context.Context, ds *dataSet) error {
	script := catScript
	env := []string{"PATH=" + os.Getenv("PATH")}
	if b.cfg.dropCaches {
		if err := dropCaches(); err != nil {
			return fmt.Errorf("dropping caches: %v", err)
		}
		r, err := measure(ctx, env, "sh", "-c", script, "sh", ds.dir)
		if err != nil {
			return err
		}
		b.record(ds.spec.Name, "cat (cold cache)", "read", r)
	}
	r, err := measure(ctx, env, "sh", "-c", script, "sh", ds.dir)
	if err != nil {
		return err
	}
	b.record(ds.spec.Name, "cat (warm cache)", "read", r)
	return nil
}

// cycle measures one tool on a fresh repository: full backup, 1% change,
// incremental backup, restore (verified on the first run), then puts the
// set back as it was.
func (b *bench) cycle(ctx context.Context, ds *dataSet, t tool, verify bool) error {
	work := filepath.Join(b.cfg.dir, "work")
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	repo, cache, target := filepath.Join(work, "repo"), filepath.Join(work, "cache"), filepath.Join(work, "restore")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "XDG_CACHE_HOME=" + cache, "STOW_RESTIC=" + b.cfg.resticBin, "TMPDIR=" + os.TempDir()}
	// The repository is created untimed for all tools alike: a copy of one
	// initialized once (restic init spends ~2 s deriving a key).
	if err := b.freshRepo(ctx, env, repo); err != nil {
		return err
	}
	ops := b.ops(t, ds, work, repo, cache, target, env)
	withRepo := func(r results.Run, err error) (results.Run, error) {
		if err == nil {
			r.RepoBytes, err = dirSize(repo)
		}
		return r, err
	}
	r, err := withRepo(ops.backup(ctx, "full"))
	if err != nil {
		return err
	}
	b.record(ds.spec.Name, t.name, "full", r)
	if err := ds.setVersion(1); err != nil {
		return err
	}
	r, err = withRepo(ops.backup(ctx, "incr"))
	if err != nil {
		return err
	}
	b.record(ds.spec.Name, t.name, "incr", r)
	r, err = ops.restore(ctx)
	if err != nil {
		return err
	}
	b.record(ds.spec.Name, t.name, "restore", r)
	if verify {
		if err := sameTree(ds.dir, target); err != nil {
			return fmt.Errorf("restore is not the backed-up data: %v", err)
		}
	}
	if err := ds.setVersion(0); err != nil {
		return err
	}
	return os.RemoveAll(work)
}

// toolOps are one tool's timed backup (op "full" or "incr") and restore of
// the latest backup into the restore directory; each settles the machine
// first (see settle).
type toolOps struct {
	backup  func(ctx context.Context, op string) (results.Run, error)
	restore func(ctx context.Context) (results.Run, error)
}

func (b *bench) ops(t tool, ds *dataSet, work, repo, cache, target string, env []string) toolOps {
	switch t.kind {
	case stowCLI:
		return toolOps{
			backup: func(ctx context.Context, _ string) (results.Run, error) {
				if err := b.settle(ctx, ds.dir, repo, cache); err != nil {
					return results.Run{}, err
				}
				return measure(ctx, env, b.cfg.stowBin, append([]string{"backup", "--repo", repo, "--password-file", b.pw, "--host", "bench", ds.dir}, t.flags...)...)
			},
			restore: func(ctx context.Context) (results.Run, error) {
				if err := b.settle(ctx, repo, cache); err != nil {
					return results.Run{}, err
				}
				return measure(ctx, env, b.cfg.stowBin, "restore", "--repo", repo, "--password-file", b.pw, "--snapshot", "latest", "--target", target)
			},
		}
	case stowJob:
		return b.jobOps(ds, work, repo, target)
	}
	resticArgs := func(a ...string) []string {
		return append([]string{"--repo", repo, "--password-file", b.pw, "--cache-dir", filepath.Join(cache, "restic")}, a...)
	}
	return toolOps{
		backup: func(ctx context.Context, _ string) (results.Run, error) {
			if err := b.settle(ctx, ds.dir, repo, cache); err != nil {
				return results.Run{}, err
			}
			return measure(ctx, env, b.cfg.resticBin, resticArgs("backup", "--host", "bench", ds.dir)...)
		},
		restore: func(ctx context.Context) (results.Run, error) {
			if err := b.settle(ctx, repo, cache); err != nil {
				return results.Run{}, err
			}
			return measure(ctx, env, b.cfg.resticBin, resticArgs("restore", "latest:"+ds.dir, "--target", target)...)
		},
	}
}

// jobOps run the data steps of sessions' Jobs (job.go): each in a new pod,
// so with an empty scratch directory, which holds restic's cache. The
// restore is a RestoreSession without rules, whose snapshot the operator
// resolved from the Snapshot record of the last backup.
func (b *bench) jobOps(ds *dataSet, work, repo, target string) toolOps {
	var last string // scratch directory of the last backup
	run := func(ctx context.Context, scratch string, step func(scratch string) (jobStep, error)) (results.Run, error) {
		if err := os.RemoveAll(scratch); err != nil {
			return results.Run{}, err
		}
		if err := os.MkdirAll(scratch, 0o755); err != nil {
			return results.Run{}, err
		}
		st, err := step(scratch)
		if err != nil {
			return results.Run{}, err
		}
		env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "STOW_RESTIC=" + b.cfg.resticBin}, st.env...)
		return measure(ctx, env, b.cfg.stowBin, st.args...)
	}
	return toolOps{
		backup: func(ctx context.Context, op string) (results.Run, error) {
			if err := b.settle(ctx, ds.dir, repo); err != nil {
				return results.Run{}, err
			}
			last = filepath.Join(work, "scratch-"+op)
			return run(ctx, last, func(scratch string) (jobStep, error) {
				return backupStep(repo, ds.dir, scratch, "bench-"+op, benchPassword)
			})
		},
		restore: func(ctx context.Context) (results.Run, error) {
			snap, err := stepSnapshot(last, ds.dir)
			if err != nil {
				return results.Run{}, fmt.Errorf("the backup's result: %v", err)
			}
			if err := b.settle(ctx, repo); err != nil {
				return results.Run{}, err
			}
			return run(ctx, filepath.Join(work, "scratch-restore"), func(scratch string) (jobStep, error) {
				return restoreStep(repo, target, scratch, benchPassword, []jobenv.ResolvedSnapshot{snap})
			})
		},
	}
}

// samePath tells whether paths a and b name the same file.
func samePath(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
