// Package jobresult is the contract between the in-Job runner (cmd/stow) and
// the operator. A step reports what it did by writing one of these as JSON to
// its container's termination message (/dev/termination-log); the operator
// reads it from the pod status and writes BackupSession, RestoreSession and
// Repository status itself. Jobs therefore need no API access and no
// service-account token, and a pod that dies before reporting is seen as such.
package jobresult

import (
	"encoding/json"
	"fmt"
	"os"
	"unicode/utf8"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// MaxMessageBytes is the kubelet's limit for one container's termination message.
const MaxMessageBytes = 4096

// TerminationLogPath is where a container's termination message is read from.
const TerminationLogPath = "/dev/termination-log"

// Result is what one Job step reports. Step-specific parts are optional.
type Result struct {
	// Step is the subcommand that wrote this ("backup-pvc", "update-status", "restore-pvc").
	Step string `json:"step"`
	// Error is a one-line cause when the step failed; empty on success.
	Error string `json:"error,omitempty"`
	// Host is the backup or restore host (restic --host).
	Host string `json:"host,omitempty"`
	// Duration of the step's data work, as a Go duration string.
	Duration string `json:"duration,omitempty"`
	// Snapshots taken by a backup step.
	Snapshots []v1beta1.SnapshotStats `json:"snapshots,omitempty"`
	// SnapshotsOmitted counts snapshots taken but left out of Snapshots
	// because the result would not fit the termination message.
	SnapshotsOmitted int `json:"snapshotsOmitted,omitempty"`
	// RepositoryInitialized is set by the backup step: true when the repository
	// existed or was initialized, false when that failed.
	RepositoryInitialized *bool `json:"repositoryInitialized,omitempty"`
	// Retention is set by update-status when a retention policy was applied.
	Retention *RetentionResult `json:"retention,omitempty"`
	// Integrity is set by update-status when restic check ran.
	Integrity *bool `json:"integrity,omitempty"`
	// TotalSize is the repository size (restic stats --mode raw-data), formatted.
	TotalSize string `json:"totalSize,omitempty"`
	// RepositorySnapshots is the number of snapshots in the whole
	// repository (every configuration's, and any not taken by Stow).
	RepositorySnapshots *int64 `json:"repositorySnapshots,omitempty"`
	// MetricsPushed was set by Jobs of earlier versions, which pushed metrics
	// themselves; the operator now pushes them and ignores it.
	MetricsPushed *bool `json:"metricsPushed,omitempty"`
	// StaleLocksRemoved counts restic locks removed because their holder was gone.
	StaleLocksRemoved int `json:"staleLocksRemoved,omitempty"`
	// Pruned is set by a maintenance step that ran restic prune.
	Pruned *bool `json:"pruned,omitempty"`
	// Maintenance is set by a maintenance step that looked at the locks.
	Maintenance *MaintenanceResult `json:"maintenance,omitempty"`
	// Wipe is set by the wipe step (wipeOut on Repository deletion).
	Wipe *WipeResult `json:"wipe,omitempty"`
	// StashOutput is set by update-status when the previous step's report
	// came from a Stash-format output.json: a Function written for Stash,
	// which writes no termination message of its own. The operator then
	// takes this result as the backup or restore step's report.
	StashOutput bool `json:"stashOutput,omitempty"`
}

// stashOutput is the output.json a Function written for Stash leaves for
// update-status (Stash's restic.BackupOutput and RestoreOutput).
type stashOutput struct {
	HostBackupStats []struct {
		Hostname  string                  `json:"hostname"`
		Phase     string                  `json:"phase"`
		Snapshots []v1beta1.SnapshotStats `json:"snapshots"`
		Duration  string                  `json:"duration"`
		Error     string                  `json:"error"`
	} `json:"hostBackupStats"`
	HostRestoreStats []struct {
		Hostname string `json:"hostname"`
		Phase    string `json:"phase"`
		Duration string `json:"duration"`
		Error    string `json:"error"`
	} `json:"hostRestoreStats"`
}

// FromStashOutput reads b as Stash's output.json; ok is false when b is
// not one (Stow's own steps write a Result).
func FromStashOutput(b []byte) (r Result, ok bool) {
	var o stashOutput
	if json.Unmarshal(b, &o) != nil || (len(o.HostBackupStats) == 0 && len(o.HostRestoreStats) == 0) {
		return Result{}, false
	}
	failed := func(phase, err string) string {
		if err == "" && phase == string(v1beta1.HostFailed) {
			return "the step reported phase Failed"
		}
		return err
	}
	r.StashOutput = true
	for _, h := range o.HostBackupStats {
		r.Step, r.Host, r.Duration = "backup", h.Hostname, h.Duration
		r.Snapshots = append(r.Snapshots, h.Snapshots...)
		if e := failed(h.Phase, h.Error); e != "" && r.Error == "" {
			r.Error = e
		}
	}
	for _, h := range o.HostRestoreStats {
		r.Step, r.Host, r.Duration = "restore", h.Hostname, h.Duration
		if e := failed(h.Phase, h.Error); e != "" && r.Error == "" {
			r.Error = e
		}
	}
	return r, true
}

// WipeResult is what the wipe step deleted.
type WipeResult struct {
	// Absent: there was no repository at the location.
	Absent bool `json:"absent,omitempty"`
	// Files and Bytes count what was deleted.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// MaintenanceResult is what a maintenance step did with the locks.
type MaintenanceResult struct {
	LocksRemoved int `json:"locksRemoved,omitempty"`
	// LocksKept describes each lock kept (its holder and time).
	LocksKept []string `json:"locksKept,omitempty"`
}

// RetentionResult is the outcome of restic forget over the configuration's
// own snapshots (its snapshot identity): Kept is how many it has now.
type RetentionResult struct {
	SnapshotsKept    int64  `json:"kept"`
	SnapshotsRemoved int64  `json:"removed"`
	Error            string `json:"error,omitempty"`
	// RemovedIDs are the first MaxRemovedIDs removed snapshots' ids (their
	// first 16 hex digits: the names of their Snapshot records).
	RemovedIDs []string `json:"removedIDs,omitempty"`
}

// MaxRemovedIDs bounds RetentionResult.RemovedIDs, so the result fits the
// termination message; a retention that removes more leaves the records
// of the rest for the next one.
const MaxRemovedIDs = 80

// Encode renders r as compact JSON that fits MaxMessageBytes: a truncated
// report is better than none, and the kubelet would cut invalid JSON, which
// turns a step that succeeded into one that "reported no result". What goes
// first is what the operator needs least: the length of free text (error,
// host, paths), then snapshot statistics, then retention and lock details,
// and only last whole snapshot entries, counted in SnapshotsOmitted.
func Encode(r Result) []byte {
	b, _ := json.Marshal(r)
	if len(b) <= MaxMessageBytes {
		return b
	}
	r.Snapshots = append([]v1beta1.SnapshotStats(nil), r.Snapshots...)
	fits := func() bool {
		b, _ = json.Marshal(r)
		return len(b) <= MaxMessageBytes
	}
	r.Error, r.Host = truncate(r.Error, 512), truncate(r.Host, 253)
	for i := range r.Snapshots {
		r.Snapshots[i].Path = truncate(r.Snapshots[i].Path, 256)
	}
	if fits() {
		return b
	}
	for i := len(r.Snapshots) - 1; i >= 0; i-- {
		r.Snapshots[i] = v1beta1.SnapshotStats{Name: r.Snapshots[i].Name, Path: r.Snapshots[i].Path}
		if fits() {
			return b
		}
	}
	if r.Retention != nil && len(r.Retention.RemovedIDs) > 0 {
		rt := *r.Retention
		rt.RemovedIDs = nil
		r.Retention = &rt
	}
	if r.Maintenance != nil && len(r.Maintenance.LocksKept) > 0 {
		mt := *r.Maintenance
		mt.LocksKept = []string{fmt.Sprintf("%d locks kept (details did not fit)", len(mt.LocksKept))}
		r.Maintenance = &mt
	}
	if fits() {
		return b
	}
	for len(r.Snapshots) > 0 {
		r.Snapshots = r.Snapshots[:len(r.Snapshots)-1]
		r.SnapshotsOmitted++
		if fits() {
			return b
		}
	}
	r.Error, r.Host = truncate(r.Error, 128), truncate(r.Host, 64)
	b, _ = json.Marshal(r)
	return b
}

// Decode parses a termination message written by Encode.
func Decode(msg string) (Result, error) {
	var r Result
	if err := json.Unmarshal([]byte(msg), &r); err != nil {
		return Result{}, fmt.Errorf("termination message is not a Stow result: %v", err)
	}
	return r, nil
}

// WriteTerminationMessage writes r to path (normally TerminationLogPath).
// Outside a pod the path may not exist; that is not an error for the step.
func WriteTerminationMessage(path string, r Result) error {
	if path == "" {
		return nil
	}
	err := os.WriteFile(path, Encode(r), 0o644)
	if os.IsNotExist(err) || os.IsPermission(err) {
		return nil
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
