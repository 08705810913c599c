package results

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Goals from the issue.
const (
	GoalRatio         = 0.98 // stow throughput / bare restic throughput
	GoalCreatedToJobS = 1.0  // BackupSession created -> Job created, p99
	// BackupSession created -> Succeeded, minus the backup step.
	GoalSessionOverheadS = 2.0
	GoalConvergeS        = 60.0 // BENCH_CP_CONFIGS (issue 14: 5,000) BackupConfigurations -> as many CronJobs
	GoalOperatorMiB      = 200.0
	GoalClutterMiB       = 100.0 // operator RSS with 10,000 unrelated Secrets, PVCs and CronJobs
	GoalClutterGrowth    = 10.0  // percent over the RSS without them
	// A 1%-change backup session at the largest repository size, over the
	// smallest: "flat" allows this much (percent).
	GoalGrowthPct = 20.0
)

// Ops compared between stow and restic.
var comparedOps = map[string]bool{"full": true, "incr": true, "restore": true}

// BaselineTool is the baseline every other tool is compared with.
const BaselineTool = "restic"

// Ratio is the throughput of tool relative to bare restic for one set and
// op: restic's median wall time over the tool's (1.0 = as fast, above = faster).
// ok is false when either side is missing.
func (d *DataPath) Ratio(set, tool, op string) (ratio float64, ok bool) {
	base, t := d.find(set, BaselineTool, op), d.find(set, tool, op)
	if base == nil || t == nil || len(base.Runs) == 0 || len(t.Runs) == 0 {
		return 0, false
	}
	bw := Summarize(Series(base.Runs, wall)).Median
	tw := Summarize(Series(t.Runs, wall)).Median
	if tw <= 0 {
		return 0, false
	}
	return bw / tw, true
}

func (d *DataPath) find(set, tool, op string) *Measurement {
	for i := range d.Measurements {
		m := &d.Measurements[i]
		if m.Set == set && m.Tool == tool && m.Op == op {
			return m
		}
	}
	return nil
}

func (d *DataPath) set(name string) Set {
	for _, s := range d.Sets {
		if s.Name == name {
			return s
		}
	}
	return Set{Name: name}
}

func wall(r Run) float64 { return r.WallS }
func cpu(r Run) float64  { return r.UserS + r.SysS }
func rss(r Run) float64  { return float64(r.MaxRSSKiB) / 1024 }
func repo(r Run) float64 { return float64(r.RepoBytes) / (1 << 20) }

// medRange formats "median (min-max)" with the given decimals.
func medRange(s Summary, decimals int) string {
	if s.N == 0 || math.IsNaN(s.Median) {
		return "-"
	}
	f := fmt.Sprintf("%%.%df", decimals)
	if s.N == 1 {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ("+f+"-"+f+")", s.Median, s.Min, s.Max)
}

// Markdown renders the whole report.
func (f *File) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Stow benchmarks\n\n")
	w("Written by `make bench` (hack/bench.sh); raw numbers in bench/results.json. ")
	w("Values are `median (min-max)` over the runs.\n\n")
	if l := f.label(); l != "" {
		w("> **%s**\n\n", l)
	}
	m := f.Machine
	w("## Machine\n\n")
	w("| nproc | memory | kernel | CPU | load average at start |\n|---|---|---|---|---|\n")
	w("| %d | %d MiB | %s | %s | %s |\n\n", m.NProc, m.MemTotalMiB, m.Kernel, m.CPUModel, m.LoadAvg)
	w("## Versions\n\n| go | restic | stow |\n|---|---|---|\n| %s | %s | %s |\n\n", f.Versions.Go, f.Versions.Restic, f.Versions.Stow)
	f.DataPath.markdown(&b)
	f.ControlPlane.markdown(&b)
	return b.String()
}

// label is the warning shown at the top when any section is not the real measurement.
func (f *File) label() string {
	var parts []string
	if f.DataPath != nil && f.DataPath.Label != "" {
		parts = append(parts, "Data path: "+f.DataPath.Label)
	}
	if f.ControlPlane != nil && f.ControlPlane.Label != "" {
		parts = append(parts, "Control plane: "+f.ControlPlane.Label)
	}
	return strings.Join(parts, ". ")
}

func (d *DataPath) markdown(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("## Data path: stow vs bare restic\n\n")
	if d == nil {
		w("Not measured yet: `make bench`.\n\n")
		return
	}
	if d.Label != "" {
		w("> **%s**\n\n", d.Label)
	}
	w("Scale `%s`, %d run(s), started %s. Local repository on the same disk, fresh repository and cache per run; ", d.Scale, d.Runs, d.Started.UTC().Format("2006-01-02 15:04 UTC"))
	w("`stow session` runs the data step of a session's Job (`stow backup-pvc`, `stow restore-pvc` with the arguments and environment pkg/resolve gives the Job, the restore's snapshot resolved by the operator), each with an empty scratch directory and so an empty restic cache, as in a new pod; `stow CLI` runs `stow backup` and `stow restore`, which keep restic's cache like bare restic. ")
	w("`full` = first backup, `incr` = backup after changing 1%% of the data, `restore` = restore of the latest snapshot into an empty directory. ")
	w("Before each timed backup or restore the harness writes back dirty pages, drops the page cache and reads the operation's inputs (set, repository, restic cache) back in, so both tools start warm on what they read and cold on what they write (without root: only the write-back); `cat` gives the read limit. ")
	w("Peak RSS is wait4's ru_maxrss (the largest single process: stow or the restic it runs). ")
	w("Ratio = restic's median wall time / the tool's (throughput relative to bare restic; goal >= %.2f).\n\n", GoalRatio)
	for _, n := range d.Notes {
		w("- %s\n", n)
	}
	if len(d.Notes) > 0 {
		w("\n")
	}
	w("| set | description | files | size MiB | seed |\n|---|---|---|---|---|\n")
	for _, s := range d.Sets {
		w("| %s | %s | %d | %.1f | %d |\n", s.Name, s.Description, s.Files, float64(s.Bytes)/(1<<20), s.Seed)
	}
	w("\n")
	// Summary: Stow at its defaults against restic.
	tools := d.StowTools
	if len(tools) == 0 {
		tools = []string{"stow"}
	}
	w("### Stow (default settings) vs restic\n\nRatio per tool; goal >= %.2f, **bold** where missed.\n\n| set | op |", GoalRatio)
	for _, t := range tools {
		w(" %s |", t)
	}
	w("\n|---|---|%s\n", strings.Repeat("---|", len(tools)))
	for _, s := range d.Sets {
		for _, op := range []string{"full", "incr", "restore"} {
			w("| %s | %s |", s.Name, op)
			for _, t := range tools {
				r, ok := d.Ratio(s.Name, t, op)
				switch {
				case !ok:
					w(" - |")
				case r >= GoalRatio:
					w(" %.2f |", r)
				default:
					w(" **%.2f** |", r)
				}
			}
			w("\n")
		}
	}
	w("\n")
	for _, s := range d.Sets {
		w("### Set %s\n\n", s.Name)
		w("| tool | op | n | wall s | MB/s (set size / wall) | peak RSS MiB | CPU s (user+sys) | repo MiB | ratio vs restic |\n")
		w("|---|---|---|---|---|---|---|---|---|\n")
		for _, m := range d.Measurements {
			if m.Set != s.Name {
				continue
			}
			ws := Summarize(Series(m.Runs, wall))
			mbs := Summarize(Series(m.Runs, func(r Run) float64 {
				if r.WallS <= 0 {
					return math.NaN()
				}
				return float64(s.Bytes) / 1e6 / r.WallS
			}))
			repoCol := "-"
			if m.Runs[0].RepoBytes > 0 {
				repoCol = medRange(Summarize(Series(m.Runs, repo)), 1)
			}
			ratio := "-"
			if m.Tool != BaselineTool && comparedOps[m.Op] {
				if r, ok := d.Ratio(s.Name, m.Tool, m.Op); ok {
					ratio = fmt.Sprintf("%.2f", r)
				}
			}
			mbDecimals := 0
			if mbs.Median < 100 {
				mbDecimals = 1
			}
			w("| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", m.Tool, m.Op, len(m.Runs), medRange(ws, 2), medRange(mbs, mbDecimals),
				medRange(Summarize(Series(m.Runs, rss)), 0), medRange(Summarize(Series(m.Runs, cpu)), 1), repoCol, ratio)
		}
		w("\n")
	}
}

func (c *ControlPlane) markdown(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("## Control plane (local cluster, real apiserver)\n\n")
	if c == nil {
		w("Not measured yet: `BENCH_CLUSTER=local make bench` (the local cluster) or `BENCH_CLUSTER=1` against a cluster with Stow deployed (hack/bench.sh controlplane).\n\n")
		return
	}
	if c.Label != "" {
		w("> **%s**\n\n", c.Label)
	}
	w("Started %s. Times are taken by the harness on the cluster's host: from just before its create request, or from the watch event of one object, to the watch event of the next (apiserver timestamps have 1 s resolution). Sessions run one after another on one BackupConfiguration; the concurrent ones each have their own Repository and PVC, since Stow serializes per Repository and per target.\n\n", c.Started.UTC().Format("2006-01-02 15:04 UTC"))
	for _, n := range c.Notes {
		w("- %s\n", n)
	}
	if len(c.Notes) > 0 {
		w("\n")
	}
	w("| measurement | result | goal | met |\n|---|---|---|---|\n")
	if len(c.CreatedToJobS) > 0 {
		p99 := Percentile(c.CreatedToJobS, 99)
		w("| BackupSession created -> Job created (%d sessions) | p50 %.3f s, p99 %.3f s | p99 < %.0f s | %s |\n",
			len(c.CreatedToJobS), Percentile(c.CreatedToJobS, 50), p99, GoalCreatedToJobS, yesNo(p99 < GoalCreatedToJobS))
	}
	if len(c.JobDoneToPhaseS) > 0 {
		w("| Job's pod finished -> session terminal (%d sessions) | p50 %.3f s, p99 %.3f s | - | - |\n",
			len(c.JobDoneToPhaseS), Percentile(c.JobDoneToPhaseS, 50), Percentile(c.JobDoneToPhaseS, 99))
	}
	if len(c.SessionTotalS) > 0 {
		over := make([]float64, len(c.SessionTotalS))
		for i := range over {
			over[i] = c.SessionTotalS[i] - c.SessionStepS[i]
		}
		p50 := Percentile(over, 50)
		w("| BackupSession created -> Succeeded (%d sessions) / of it the backup step / overhead (the rest) | p50 %.2f s / %.2f s / %.2f s, p99 overhead %.2f s | overhead p50 < %.0f s | %s |\n",
			len(over), Percentile(c.SessionTotalS, 50), Percentile(c.SessionStepS, 50), p50, Percentile(over, 99), GoalSessionOverheadS, yesNo(p50 < GoalSessionOverheadS))
	}
	if c.Sessions > 0 {
		w("| sessions that did not succeed | %d of %d | 0 | %s |\n", c.SessionsFailed, c.Sessions, yesNo(c.SessionsFailed == 0))
	}
	if c.Configs > 0 {
		conv, ready, rss := Summarize(c.ConvergeS), Summarize(c.ReadyS), Summarize(c.OperatorRSSMiB)
		// A goal is met only when every run meets it.
		w("| %d BackupConfigurations -> %d CronJobs (%s) | %s s (fewest seen %d) | < %.0f s | %s |\n",
			c.Configs, c.Configs, runsOf(conv.N), medRange(conv, 1), c.CronJobsSeen, GoalConvergeS,
			yesNo(conv.N > 0 && c.CronJobsSeen == c.Configs && conv.Max < GoalConvergeS))
		if ready.N > 0 {
			w("| %d BackupConfigurations -> all status.phase Ready (%s) | %s s (fewest Ready %d) | - | - |\n",
				c.Configs, runsOf(ready.N), medRange(ready, 1), c.ReadySeen)
		}
		w("| operator RSS: idle before, peak during (%s) | %.0f MiB, %s MiB | < %.0f MiB | %s |\n",
			runsOf(rss.N), c.OperatorIdleMiB, medRange(rss, 0), GoalOperatorMiB, yesNo(rss.N > 0 && rss.Max < GoalOperatorMiB))
	}
	if c.RestartObjects > 0 {
		w("| operator restart over %d converged configurations: objects rewritten (of the configurations, CronJobs and trigger RBAC) / old pod deleted -> new operator reconciled all | %d of %d / %.1f s | 0 rewritten | %s |\n",
			c.RestartConfigs, c.RestartRewritten, c.RestartObjects, c.RestartSettleS, yesNo(c.RestartRewritten == 0))
	}
	if c.ClutterObjects > 0 {
		growth := 100 * (c.ClutterMiB - c.ClutterBaseMiB) / c.ClutterBaseMiB
		w("| operator RSS settled after a restart: without / with %d unrelated Secrets (100 KiB), PVCs and CronJobs | %.1f MiB / %.1f MiB (%+.0f%%) | < %.0f MiB, within %.0f%% | %s |\n",
			c.ClutterObjects, c.ClutterBaseMiB, c.ClutterMiB, growth, GoalClutterMiB, GoalClutterGrowth,
			yesNo(c.ClutterMiB < GoalClutterMiB && growth <= GoalClutterGrowth))
		w("| operator RSS peak while those %d x 3 objects were created | %.1f MiB | - | - |\n", c.ClutterObjects, c.ClutterPeakMiB)
	}
	if c.Concurrent > 0 {
		jobs, done := Summarize(c.ConcurrentJobsS), Summarize(c.ConcurrentDoneS)
		w("| %d concurrent BackupSessions (%s): all Jobs created / all terminal | %s s / %s s, %d not Succeeded | - | - |\n",
			c.Concurrent, runsOf(done.N), medRange(jobs, 1), medRange(done, 1), c.ConcurrentFailed)
	}
	w("\n")
	c.overheadMarkdown(b)
	c.growthMarkdown(b)
}

// overheadMarkdown is the session-vs-bare-restic table and where the
// sessions spent their time.
func (c *ControlPlane) overheadMarkdown(b *strings.Builder) {
	if len(c.Overhead) == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Session overhead: a session against bare restic on the same data\n\n")
	w("Sessions run one after another; before each backup 1%% of the files change, before each restore the volume is emptied, the page cache dropped and both repositories read back in (as the data path does; skipped with BENCH_DROP_CACHES=0). Bare restic runs on the cluster's host, alternately with the sessions, on the same files, into a repository of the same kind (local backend) on the same disk, with its cache kept between runs as a user's would be. Overhead = the sessions' median minus restic's median. The configuration keeps the last 5 snapshots and the timed backups start with 5 kept, so each session's retention removes one; the last column is what bare restic's same forget costs (not part of the overhead's baseline, which is the backup alone).\n\n")
	w("| operation | data | sessions | session created -> Succeeded s | of it the Job's step s | bare restic s | overhead s | goal | met | bare restic's forget after its backup s |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, o := range c.Overhead {
		over := o.Overhead()
		met := "-"
		if !math.IsNaN(over) {
			met = yesNo(over < GoalSessionOverheadS && o.Failed == 0)
		}
		w("| %s | %d files, %.0f MiB | %d (%d failed) | %s | %s | %s | %.2f | < %.0f s | %s | %s |\n", o.Op, o.Files, float64(o.Bytes)/(1<<20),
			len(o.SessionS)+o.Failed, o.Failed, medRange(Summarize(o.SessionS), 2), medRange(Summarize(o.StepS), 2), medRange(Summarize(o.ResticS), 2),
			over, GoalSessionOverheadS, met, medRange(Summarize(o.ResticForgetS), 2))
	}
	w("\n")
	var names []string
	for _, o := range c.Overhead {
		for _, st := range o.Stages {
			if !slices.Contains(names, st.Name) {
				names = append(names, st.Name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	w("Where a session's time goes (medians of the sessions; each span from the first watch event showing one thing to the first showing the next):\n\n| span |")
	for _, o := range c.Overhead {
		w(" %s s |", o.Op)
	}
	w("\n|---|")
	for range c.Overhead {
		w("---|")
	}
	w("\n")
	for _, n := range names {
		w("| %s |", n)
		for _, o := range c.Overhead {
			cell := "-"
			for _, st := range o.Stages {
				if st.Name == n {
					cell = medRange(Summarize(st.S), 2)
				}
			}
			w(" %s |", cell)
		}
		w("\n")
	}
	w("\n")
}

// growthMarkdown is the 1%-change backup session at each repository size.
func (c *ControlPlane) growthMarkdown(b *strings.Builder) {
	if len(c.Growth) == 0 {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### A 1%% change as the repository grows\n\n")
	w("The same backup session (1%% of the files changed before each) with the repository grown by other hosts' snapshots of random data in between.\n\n")
	w("| repository MiB | snapshots | sessions | session created -> Succeeded s | of it the Job's step s |\n|---|---|---|---|---|\n")
	for _, g := range c.Growth {
		w("| %.0f | %d | %d (%d failed) | %s | %s |\n", float64(g.RepoBytes)/(1<<20), g.Snapshots, len(g.SessionS)+g.Failed, g.Failed,
			medRange(Summarize(g.SessionS), 2), medRange(Summarize(g.StepS), 2))
	}
	var names []string
	for _, g := range c.Growth {
		for _, st := range g.Stages {
			if !slices.Contains(names, st.Name) {
				names = append(names, st.Name)
			}
		}
	}
	if len(names) > 0 {
		w("\n| span (medians) |")
		for _, g := range c.Growth {
			w(" %.0f MiB s |", float64(g.RepoBytes)/(1<<20))
		}
		w("\n|---|")
		for range c.Growth {
			w("---|")
		}
		w("\n")
		for _, n := range names {
			w("| %s |", n)
			for _, g := range c.Growth {
				cell := "-"
				for _, st := range g.Stages {
					if st.Name == n {
						cell = medRange(Summarize(st.S), 2)
					}
				}
				w(" %s |", cell)
			}
			w("\n")
		}
	}
	first, last := c.Growth[0], c.Growth[len(c.Growth)-1]
	lo, hi := Summarize(first.SessionS).Median, Summarize(last.SessionS).Median
	if len(c.Growth) > 1 && !math.IsNaN(lo) && !math.IsNaN(hi) && lo > 0 {
		pct := 100 * (hi - lo) / lo
		failed := 0
		for _, g := range c.Growth {
			failed += g.Failed
		}
		w("\nAt %.0fx the repository size the session takes %+.0f%% (goal: flat, within %.0f%%): %s.\n",
			float64(last.RepoBytes)/float64(max(first.RepoBytes, 1)), pct, GoalGrowthPct, map[bool]string{true: "met", false: "**not met**"}[pct <= GoalGrowthPct && failed == 0])
	}
	w("\n")
}

func runsOf(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
