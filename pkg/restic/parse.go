package restic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// MountTagKey tags every snapshot Stow takes with the mount path it was taken
// under (stow-mount=/stow-data), so that a restore into another mount path
// can place files relative to it.
const MountTagKey = "stow-mount"

// BackupSummary is restic backup's final JSON message.
type BackupSummary struct {
	FilesNew            int64     `json:"files_new"`
	FilesChanged        int64     `json:"files_changed"`
	FilesUnmodified     int64     `json:"files_unmodified"`
	DirsNew             int64     `json:"dirs_new"`
	DirsChanged         int64     `json:"dirs_changed"`
	DirsUnmodified      int64     `json:"dirs_unmodified"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalFilesProcessed int64     `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"`
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	SnapshotID          string    `json:"snapshot_id"`
}

// SnapshotStats converts the summary to the status form, with sizes and
// durations formatted as Stash does.
func (s *BackupSummary) SnapshotStats(path string) v1beta1.SnapshotStats {
	i := func(n int64) *int64 { return &n }
	return v1beta1.SnapshotStats{
		Name:           s.SnapshotID,
		Path:           path,
		TotalSize:      FormatSize(s.TotalBytesProcessed),
		Uploaded:       FormatSize(s.DataAdded),
		ProcessingTime: FormatProcessingTime(time.Duration(s.TotalDuration * float64(time.Second))),
		FileStats: v1beta1.FileStats{
			TotalFiles:      i(s.TotalFilesProcessed),
			NewFiles:        i(s.FilesNew),
			ModifiedFiles:   i(s.FilesChanged),
			UnmodifiedFiles: i(s.FilesUnmodified),
		},
	}
}

// ItemError is one per-file error restic reported (message_type "error").
type ItemError struct {
	Item    string
	During  string
	Message string
}

// backupOutput is what restic backup --json printed on stdout and stderr.
type backupOutput struct {
	Summary *BackupSummary
	Errors  []ItemError
}

// parseBackupOutput reads restic backup --json lines from stdout and stderr.
// Status lines are ignored; non-JSON lines are skipped.
func parseBackupOutput(stdout, stderr []byte) (backupOutput, error) {
	var out backupOutput
	for _, stream := range [][]byte{stdout, stderr} {
		err := eachJSONLine(stream, func(line []byte) error {
			var m struct {
				MessageType string `json:"message_type"`
				Error       struct {
					Message string `json:"message"`
				} `json:"error"`
				During string `json:"during"`
				Item   string `json:"item"`
			}
			if err := json.Unmarshal(line, &m); err != nil {
				return nil
			}
			switch m.MessageType {
			case "summary":
				var s BackupSummary
				if err := json.Unmarshal(line, &s); err != nil {
					return fmt.Errorf("parsing backup summary: %v", err)
				}
				out.Summary = &s
			case "error":
				out.Errors = append(out.Errors, ItemError{Item: m.Item, During: m.During, Message: m.Error.Message})
			}
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// eachJSONLine calls fn with every line of restic --json output that holds
// an object (status lines are objects too; other lines are skipped), until
// fn fails.
func eachJSONLine(stream []byte, fn func(line []byte) error) error {
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading restic output: %v", err)
	}
	return nil
}

// restoredFiles reads the file count of restic restore --json's summary
// line (total_files: restored or already there); ok is false when there is
// no summary (an older restic).
func restoredFiles(stdout []byte) (n int64, ok bool) {
	_ = eachJSONLine(stdout, func(line []byte) error {
		var m struct {
			MessageType string `json:"message_type"`
			TotalFiles  int64  `json:"total_files"`
		}
		if json.Unmarshal(line, &m) == nil && m.MessageType == "summary" {
			n, ok = m.TotalFiles, true
		}
		return nil
	})
	return n, ok
}

// Snapshot is one entry of restic snapshots --json.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Parent   string    `json:"parent,omitempty"`
	Tree     string    `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Summary  *struct {
		TotalFilesProcessed int64  `json:"total_files_processed"`
		TotalBytesProcessed uint64 `json:"total_bytes_processed"`
	} `json:"summary,omitempty"`
}

// MountPath is the mount path the snapshot was taken under (from its
// stow-mount tag), or "" for snapshots Stow did not take (Stash's).
func (s *Snapshot) MountPath() string {
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, MountTagKey+"="); ok {
			return v
		}
	}
	return ""
}

func parseSnapshots(stdout []byte) ([]Snapshot, error) {
	line := firstJSON(stdout, '[')
	if line == nil {
		return nil, nil
	}
	var s []Snapshot
	if err := json.Unmarshal(line, &s); err != nil {
		return nil, fmt.Errorf("parsing snapshots: %v", err)
	}
	return s, nil
}

// ForgetGroup is one group of restic forget --json.
type ForgetGroup struct {
	Host   string     `json:"host"`
	Paths  []string   `json:"paths"`
	Tags   []string   `json:"tags"`
	Keep   []Snapshot `json:"keep"`
	Remove []Snapshot `json:"remove"`
}

// ForgetResult counts what restic forget kept and removed over all groups.
type ForgetResult struct {
	Kept, Removed int64
	Groups        []ForgetGroup
}

// parseForget reads restic forget --json. With --prune, prune's own output
// may follow the JSON array on other lines.
func parseForget(stdout []byte) (ForgetResult, error) {
	var r ForgetResult
	line := firstJSON(stdout, '[')
	if line == nil {
		if len(bytes.TrimSpace(stdout)) == 0 {
			return r, nil // nothing in the repository
		}
		return r, fmt.Errorf("restic forget printed no JSON result")
	}
	if err := json.Unmarshal(line, &r.Groups); err != nil {
		return r, fmt.Errorf("parsing forget output: %v", err)
	}
	for _, g := range r.Groups {
		r.Kept += int64(len(g.Keep))
		r.Removed += int64(len(g.Remove))
	}
	return r, nil
}

// firstJSON returns the first line of out that starts with open ('[' or '{').
func firstJSON(out []byte, open byte) []byte {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) > 0 && line[0] == open {
			return append([]byte(nil), line...)
		}
	}
	return nil
}
