// Package results holds the benchmark numbers (bench/results.json), their
// statistics (median, min-max, percentiles) and the Markdown report
// (bench/results.md). Each harness replaces its own section of the file, so
// the data path and the control plane can be measured in separate runs.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"time"
)

// File is bench/results.json.
type File struct {
	Machine      Machine       `json:"machine"`
	Versions     Versions      `json:"versions"`
	DataPath     *DataPath     `json:"dataPath,omitempty"`
	ControlPlane *ControlPlane `json:"controlPlane,omitempty"`
}

// Machine describes where the numbers were taken.
type Machine struct {
	NProc       int    `json:"nproc"`
	MemTotalMiB int    `json:"memTotalMiB"`
	Kernel      string `json:"kernel"`
	CPUModel    string `json:"cpuModel"`
	// LoadAvg is /proc/loadavg when the run started: the machine is shared.
	LoadAvg string `json:"loadAvg"`
}

// Versions of what was measured.
type Versions struct {
	Go     string `json:"go"`
	Restic string `json:"restic"`
	Stow   string `json:"stow"`
}

// DataPath is the stow-vs-restic section.
type DataPath struct {
	Started time.Time `json:"started"`
	Scale   string    `json:"scale"`
	// Label marks runs that are not the measurement (a smoke run).
	Label string   `json:"label,omitempty"`
	Runs  int      `json:"runs"`
	Notes []string `json:"notes,omitempty"`
	Sets  []Set    `json:"sets"`
	// StowTools are the tools that run Stow at its default settings, each
	// a column of the summary against restic; empty means "stow" (the
	// only one before sessions were measured).
	StowTools []string `json:"stowTools,omitempty"`
	// Measurements are in the order they should be reported.
	Measurements []Measurement `json:"measurements"`
}

// Set is one generated data set.
type Set struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Files       int    `json:"files"`
	Bytes       int64  `json:"bytes"`
	Seed        uint64 `json:"seed"`
}

// Measurement is one (set, tool, operation) measured Runs times.
type Measurement struct {
	Set  string `json:"set"`
	Tool string `json:"tool"`
	Op   string `json:"op"`
	Runs []Run  `json:"runs"`
}

// Run is one timed child process (and its waited-for children).
type Run struct {
	WallS float64 `json:"wallS"`
	UserS float64 `json:"userS"`
	SysS  float64 `json:"sysS"`
	// MaxRSSKiB is wait4's ru_maxrss: the largest single process of the
	// tree (stow or the restic it ran), not their sum.
	MaxRSSKiB int64 `json:"maxRSSKiB"`
	// RepoBytes is the repository size after a backup (0 otherwise).
	RepoBytes int64 `json:"repoBytes,omitempty"`
}

// ControlPlane is the operator section (bench/controlplane).
type ControlPlane struct {
	Started time.Time `json:"started"`
	Label   string    `json:"label,omitempty"`
	Notes   []string  `json:"notes,omitempty"`
	// Load average (1, 5, 15 min) when this run started and ended.
	LoadStart string `json:"loadStart,omitempty"`
	LoadEnd   string `json:"loadEnd,omitempty"`

	// Session overhead, seconds per session, observed through watches.
	Sessions        int       `json:"sessions"`
	CreatedToJobS   []float64 `json:"createdToJobS"`
	JobDoneToPhaseS []float64 `json:"jobDoneToPhaseS"`
	SessionsFailed  int       `json:"sessionsFailed"`
	// BackupSession created -> terminal, and of that the backup step
	// (restic and stow in the Job, as the session's status reports it).
	SessionTotalS []float64 `json:"sessionTotalS,omitempty"`
	SessionStepS  []float64 `json:"sessionStepS,omitempty"`
	// Scale and concurrency, repeated BENCH_CP_RUNS times: one value per run.
	Configs          int       `json:"configs"`
	ConvergeS        []float64 `json:"convergeS"`          // last CronJob seen
	CronJobsSeen     int       `json:"cronJobsSeen"`       // fewest seen in a run
	ReadyS           []float64 `json:"readyS"`             // last configuration seen with status.phase Ready
	ReadySeen        int       `json:"readySeen"`          // fewest Ready in a run
	OperatorRSSMiB   []float64 `json:"operatorRSSMiB"`     // peak sampled during each scale run
	OperatorIdleMiB  float64   `json:"operatorIdleRSSMiB"` // before the first
	Concurrent       int       `json:"concurrent"`
	ConcurrentJobsS  []float64 `json:"concurrentAllJobsS"` // all sessions have a Job
	ConcurrentDoneS  []float64 `json:"concurrentAllDoneS"` // all sessions terminal
	ConcurrentFailed int       `json:"concurrentFailed"`   // over all runs
	// Restart over the first scale run's configurations.
	RestartConfigs   int     `json:"restartConfigs,omitempty"`
	RestartObjects   int     `json:"restartObjects,omitempty"` // configurations and Stow's objects of their namespace
	RestartRewritten int     `json:"restartRewritten"`         // of those, changed by the restarted operator
	RestartSettleS   float64 `json:"restartSettleS,omitempty"` // old pod deleted -> new operator reconciled all, queue empty
	// Memory against unrelated objects: RSS settled after a restart.
	ClutterObjects int     `json:"clutterObjects,omitempty"` // of each: Secrets (100 KiB), PVCs, CronJobs
	ClutterBaseMiB float64 `json:"clutterBaseMiB,omitempty"` // without them
	ClutterMiB     float64 `json:"clutterMiB,omitempty"`     // with them
	ClutterPeakMiB float64 `json:"clutterPeakMiB,omitempty"` // while they were created
	// A session's time against bare restic doing the same on the same data
	// (part overhead): one entry per operation (backup after a 1% change,
	// restore into an empty volume).
	Overhead []SessionOverhead `json:"overhead,omitempty"`
	// The same 1%-change backup session as the repository grows (part growth).
	Growth []GrowthPoint `json:"growth,omitempty"`
}

// SessionOverhead is one operation run as Stow sessions and as bare restic
// on the host, alternately, on the same data.
type SessionOverhead struct {
	Op    string `json:"op"` // "backup" (after a 1% change) or "restore"
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	// SessionS: session created -> Succeeded, one per session; StepS: of
	// that, the Job's step (stow and restic) as the session's status
	// reports it; ResticS: bare restic's same operation.
	SessionS []float64 `json:"sessionS"`
	StepS    []float64 `json:"stepS,omitempty"`
	ResticS  []float64 `json:"resticS"`
	// ResticForgetS: bare restic's forget after its backup (keep-last as
	// the configuration's), not counted in ResticS; backups only.
	ResticForgetS []float64 `json:"resticForgetS,omitempty"`
	Failed        int       `json:"failed"` // sessions that did not succeed (not in SessionS)
	// Stages split the sessions' time at what the harness saw happen
	// (watch events), in order; one value per session.
	Stages []Stage `json:"stages,omitempty"`
}

// Stage is one span of a session, e.g. "pod created -> scheduled".
type Stage struct {
	Name string    `json:"name"`
	S    []float64 `json:"s"`
}

// Overhead is the session's median minus bare restic's median (NaN when
// either is missing).
func (o SessionOverhead) Overhead() float64 {
	return Summarize(o.SessionS).Median - Summarize(o.ResticS).Median
}

// GrowthPoint is the 1%-change backup session at one repository size.
type GrowthPoint struct {
	RepoBytes int64     `json:"repoBytes"` // the repository's size on disk before the sessions
	Snapshots int       `json:"snapshots"` // snapshots in it (most of other hosts)
	SessionS  []float64 `json:"sessionS"`
	StepS     []float64 `json:"stepS,omitempty"`
	Failed    int       `json:"failed"`
	Stages    []Stage   `json:"stages,omitempty"`
}

// Load reads path; a missing file is an empty File.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &f, nil
}

// Save writes path atomically.
func (f *File) Save(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Summary is the median and range of a series.
type Summary struct {
	N                int
	Median, Min, Max float64
}

// Summarize returns the median (mean of the middle two for even N), min and
// max of xs; an empty series is all NaN.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of xs: the
// smallest value with at least p% of the values at or below it. With 50
// samples p99 is the largest, which is what a "p99 < 1 s" goal must meet.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// Series extracts one value from each run.
func Series(runs []Run, f func(Run) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}
