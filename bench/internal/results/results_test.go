package results

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   []float64
		want Summary
	}{
		{[]float64{3}, Summary{1, 3, 3, 3}},
		{[]float64{5, 1, 3}, Summary{3, 3, 1, 5}},
		{[]float64{4, 1, 3, 2}, Summary{4, 2.5, 1, 4}},
	}
	for _, tt := range tests {
		if got := Summarize(tt.in); got != tt.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if s := Summarize(nil); s.N != 0 || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(nil) = %+v, want N=0 and NaN", s)
	}
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 {
		t.Error("Summarize sorted its input")
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	fifty := make([]float64, 50)
	for i := range fifty {
		fifty[i] = float64(i + 1)
	}
	tests := []struct {
		xs   []float64
		p    float64
		want float64
	}{
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 100, 100},
		{hundred, 1, 1},
		{fifty, 50, 25},
		{fifty, 99, 50}, // p99 of 50 samples is the worst one
		{[]float64{7}, 99, 7},
	}
	for _, tt := range tests {
		if got := Percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("Percentile(n=%d, %v) = %v, want %v", len(tt.xs), tt.p, got, tt.want)
		}
	}
	for _, p := range []float64{0, -1, 101} {
		if got := Percentile(hundred, p); !math.IsNaN(got) {
			t.Errorf("Percentile(p=%v) = %v, want NaN", p, got)
		}
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil) = %v, want NaN", got)
	}
}

func sample() *File {
	return &File{
		Machine:  Machine{NProc: 2, MemTotalMiB: 24105, Kernel: "6.1.0", CPUModel: "Test CPU", LoadAvg: "0.5 0.4 0.3"},
		Versions: Versions{Go: "go1.26.8", Restic: "restic 0.19.1", Stow: "v0.1.0-3-gabc"},
		DataPath: &DataPath{
			Scale: "small", Label: "smoke run", Runs: 2,
			Sets: []Set{{Name: "mixed", Description: "d", Files: 10, Bytes: 100e6, Seed: 1}},
			Measurements: []Measurement{
				{Set: "mixed", Tool: "restic", Op: "full", Runs: []Run{{WallS: 10, UserS: 8, SysS: 1, MaxRSSKiB: 102400, RepoBytes: 50 << 20}, {WallS: 12}}},
				{Set: "mixed", Tool: "stow", Op: "full", Runs: []Run{{WallS: 11, MaxRSSKiB: 204800, RepoBytes: 50 << 20}, {WallS: 12, MaxRSSKiB: 204800, RepoBytes: 50 << 20}}},
				{Set: "mixed", Tool: "restic", Op: "restore", Runs: []Run{{WallS: 4}}},
				{Set: "mixed", Tool: "stow", Op: "restore", Runs: []Run{{WallS: 5}}},
				{Set: "mixed", Tool: "cat-cold", Op: "read", Runs: []Run{{WallS: 2}}},
			},
		},
	}
}

func TestRatio(t *testing.T) {
	d := sample().DataPath
	// medians: restic 11, stow 11.5
	if r, ok := d.Ratio("mixed", "stow", "full"); !ok || math.Abs(r-11.0/11.5) > 1e-9 {
		t.Errorf("Ratio(full) = %v, %v; want %v", r, ok, 11.0/11.5)
	}
	if r, ok := d.Ratio("mixed", "stow", "restore"); !ok || r != 0.8 {
		t.Errorf("Ratio(restore) = %v, %v; want 0.8", r, ok)
	}
	if _, ok := d.Ratio("mixed", "stow", "incr"); ok {
		t.Error("Ratio(incr) reported without measurements")
	}
}

func TestMarkdown(t *testing.T) {
	f := sample()
	f.ControlPlane = &ControlPlane{
		Sessions: 3, CreatedToJobS: []float64{0.2, 0.3, 1.5}, JobDoneToPhaseS: []float64{0.1, 0.1, 0.2},
		Configs: 1000, ConvergeS: []float64{42, 40, 61}, CronJobsSeen: 1000, OperatorRSSMiB: []float64{90, 80, 85}, OperatorIdleMiB: 30,
		RestartConfigs: 1000, RestartObjects: 2003, RestartRewritten: 0, RestartSettleS: 4.25,
		ClutterObjects: 10000, ClutterBaseMiB: 40, ClutterMiB: 45, ClutterPeakMiB: 50,
	}
	md := f.Markdown()
	reportHas(t, md,
		"> **Data path: smoke run**",
		"| 2 | 24105 MiB | 6.1.0 | Test CPU | 0.5 0.4 0.3 |",
		"| go1.26.8 | restic 0.19.1 | v0.1.0-3-gabc |",
		// Without StowTools (results written before sessions were
		// measured), the one "stow" tool is the summary's column.
		"| set | op | stow |",
		"| mixed | full | **0.96** |",
		"| mixed | restore | **0.80** |",
		"| stow | full | 2 | 11.50 (11.00-12.00) | 8.7 (8.3-9.1) | 200 (200-200) |",
		"| restic | full | 2 | 11.00 (10.00-12.00) |",
		"| cat-cold | read | 1 | 2.00 | 50.0 | 0 | 0.0 | - | - |",
		"p50 0.300 s, p99 1.500 s | p99 < 1 s | **no** |",
		// One run over the goal fails it, whatever the median.
		"| 1000 BackupConfigurations -> 1000 CronJobs (3 runs) | 42.0 (40.0-61.0) s (fewest seen 1000) | < 60 s | **no** |",
		"| 30 MiB, 85 (80-90) MiB | < 200 MiB | yes |",
		"| 0 of 2003 / 4.2 s | 0 rewritten | yes |",
		// 12.5% growth fails the 10% goal although under 100 MiB.
		"| 40.0 MiB / 45.0 MiB (+12%) | < 100 MiB, within 10% | **no** |",
	)
	if strings.Contains(md, "concurrent BackupSessions") {
		t.Error("report shows the concurrent test that was not run")
	}
	empty := (&File{}).Markdown()
	if !strings.Contains(empty, "Data path: stow vs bare restic\n\nNot measured yet") || !strings.Contains(empty, "BENCH_CLUSTER=local") {
		t.Errorf("empty report does not say what is missing:\n%s", empty)
	}
}

// reportHas fails t for each of wants that md does not contain.
func reportHas(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
}

func TestMarkdownStowTools(t *testing.T) {
	f := sample()
	d := f.DataPath
	d.StowTools = []string{"stow session", "stow"}
	d.Measurements = append(d.Measurements, Measurement{Set: "mixed", Tool: "stow session", Op: "full", Runs: []Run{{WallS: 10.9}}})
	reportHas(t, f.Markdown(),
		"goal >= 0.98",
		"| set | op | stow session | stow |\n|---|---|---|---|\n",
		// Met, missed, and not measured.
		"| mixed | full | 1.01 | **0.96** |",
		"| mixed | incr | - | - |",
		"| mixed | restore | - | **0.80** |",
		"| stow session | full | 1 | 10.90 |",
	)
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	f, err := Load(path)
	if err != nil || f.DataPath != nil {
		t.Fatalf("Load(missing) = %+v, %v; want empty", f, err)
	}
	if err := sample().Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Markdown() != sample().Markdown() {
		t.Error("report differs after a save/load round trip")
	}
}

func TestOverheadAndGrowthMarkdown(t *testing.T) {
	c := &ControlPlane{
		Overhead: []SessionOverhead{
			{Op: "backup, 1% changed", Files: 10000, Bytes: 276 << 20, SessionS: []float64{4, 5, 6}, StepS: []float64{2, 2, 2}, ResticS: []float64{2.5, 3, 3.5},
				Stages: []Stage{{Name: "created -> Job", S: []float64{0.01, 0.02, 0.03}}}},
			{Op: "restore", Files: 10000, Bytes: 276 << 20, SessionS: []float64{5}, ResticS: []float64{2}, Failed: 1},
		},
		Growth: []GrowthPoint{
			{RepoBytes: 200 << 20, Snapshots: 3, SessionS: []float64{4, 4.2}},
			{RepoBytes: 8 << 30, Snapshots: 20, SessionS: []float64{5, 5}},
		},
	}
	var b strings.Builder
	c.markdown(&b)
	reportHas(t, b.String(),
		"| backup, 1% changed | 10000 files, 276 MiB | 3 (0 failed) | 5.00 (4.00-6.00) | 2.00 (2.00-2.00) | 3.00 (2.50-3.50) | 2.00 | < 2 s | **no** |",
		// Under the goal but a session failed: not met.
		"| restore | 10000 files, 276 MiB | 2 (1 failed) | 5.00 | - | 2.00 | 3.00 | < 2 s | **no** |",
		"| created -> Job | 0.02 (0.01-0.03) | - |",
		"| 200 | 3 | 2 (0 failed) | 4.10 (4.00-4.20) | - |",
		// 5.0 over 4.1 is +22%: not flat.
		"At 41x the repository size the session takes +22% (goal: flat, within 20%): **not met**.",
	)
}
