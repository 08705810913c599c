package restic

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real restic 0.19.1 output, shortened.
const (
	backupStdout = `{"message_type":"status","percent_done":0.5,"total_files":2,"files_done":1}
{"message_type":"summary","files_new":2,"files_changed":1,"files_unmodified":7,"dirs_new":4,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":2,"tree_blobs":5,"data_added":11800000,"data_added_packed":1706,"total_files_processed":10,"total_bytes_processed":80,"total_duration":75.86,"backup_start":"2026-11-25T09:49:03.611479286Z","backup_end":"2026-11-25T09:49:04.474055969Z","snapshot_id":"4e7942c642453a17be76cf448e44e6058ddd38ad1b1c8edff2442c6f7be00a0a"}
`
	backupStderrPartial = `{"message_type":"error","error":{"message":"open /data/locked.txt: permission denied"},"during":"archival","item":"/data/locked.txt"}
{"message_type":"error","error":{"message":"open /data/b: permission denied"},"during":"scan","item":"/data/b"}
{"message_type":"exit_error","code":3,"message":"Warning: at least one source file could not be read"}
`
	forgetStdout = `[{"tags":null,"host":"vm","paths":["/d"],"keep":[{"time":"2026-11-25T09:49:04.55697944Z","paths":["/d"],"hostname":"vm","id":"d52e","short_id":"d52e"},{"time":"2026-11-25T09:49:04.55697944Z","paths":["/d"],"hostname":"vm","id":"aaaa","short_id":"aaaa"}],"remove":[{"time":"2026-11-25T09:49:03.611479286Z","paths":["/d"],"hostname":"vm","id":"4e79","short_id":"4e79"}],"reasons":[]},{"tags":null,"host":"h2","paths":["/e"],"keep":[{"id":"bbbb","short_id":"bbbb","paths":["/e"],"hostname":"h2"}],"remove":null,"reasons":[]}]
`
	snapshotsStdout = `[{"time":"2026-11-25T09:49:04.55697944Z","tree":"5a53","paths":["/stow-data/sub"],"hostname":"host-0","username":"root","tags":["stow-mount=/stow-data","x"],"program_version":"restic 0.19.1","summary":{"total_files_processed":2,"total_bytes_processed":5},"id":"d52e6c1157649f3d","short_id":"d52e6c11"},{"time":"2026-11-25T09:50:00Z","tree":"5a54","paths":["/stash-data"],"hostname":"host-0","id":"e1","short_id":"e1"}]
`
)

func TestParseBackupOutput(t *testing.T) {
	out, err := parseBackupOutput([]byte(backupStdout), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := out.Summary
	if s == nil || s.SnapshotID != "4e7942c642453a17be76cf448e44e6058ddd38ad1b1c8edff2442c6f7be00a0a" {
		t.Fatalf("summary = %+v", s)
	}
	st := s.SnapshotStats("/stow-data")
	if st.Name != s.SnapshotID || st.Path != "/stow-data" || st.TotalSize != "80 B" || st.Uploaded != "11.253 MiB" || st.ProcessingTime != "1:15" {
		t.Errorf("stats = %+v", st)
	}
	fs := st.FileStats
	if *fs.TotalFiles != 10 || *fs.NewFiles != 2 || *fs.ModifiedFiles != 1 || *fs.UnmodifiedFiles != 7 {
		t.Errorf("file stats = %d %d %d %d", *fs.TotalFiles, *fs.NewFiles, *fs.ModifiedFiles, *fs.UnmodifiedFiles)
	}

	out, err = parseBackupOutput([]byte(backupStdout), []byte(backupStderrPartial))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 2 || out.Errors[0].Item != "/data/locked.txt" || out.Errors[1].During != "scan" {
		t.Fatalf("errors = %+v", out.Errors)
	}
	e := &UnreadableFilesError{Path: "/data", Files: out.Errors}
	msg := e.Error()
	for _, want := range []string{"/data/locked.txt (permission denied)", "2 file(s) could not be read", "incomplete"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestParseForget(t *testing.T) {
	tests := []struct {
		name          string
		out           string
		kept, removed int64
		wantErr       bool
	}{
		{"two groups", forgetStdout, 3, 1, false},
		{"with prune output after", forgetStdout + "loading indexes...\nremoved 3 packs\n", 3, 1, false},
		{"empty repository", "", 0, 0, false},
		{"no json", "some text\n", 0, 0, true},
		{"broken json", "[{\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseForget([]byte(tt.out))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if r.Kept != tt.kept || r.Removed != tt.removed {
				t.Errorf("kept %d removed %d, want %d %d", r.Kept, r.Removed, tt.kept, tt.removed)
			}
		})
	}
}

func TestParseSnapshots(t *testing.T) {
	s, err := parseSnapshots([]byte(snapshotsStdout))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 {
		t.Fatalf("got %d snapshots", len(s))
	}
	if s[0].MountPath() != "/stow-data" || s[1].MountPath() != "" {
		t.Errorf("mount paths %q %q", s[0].MountPath(), s[1].MountPath())
	}
	if s[0].Hostname != "host-0" || s[0].Paths[0] != "/stow-data/sub" || s[0].Summary.TotalFilesProcessed != 2 {
		t.Errorf("snapshot = %+v", s[0])
	}
	if none, err := parseSnapshots([]byte("")); err != nil || none != nil {
		t.Errorf("empty output: %v %v", none, err)
	}
}

func TestCauseOf(t *testing.T) {
	tests := []struct{ stderr, want string }{
		{`{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}`, "wrong password or no key found"},
		{"Fatal: unable to open config file: Stat: The access key ID you provided does not exist\nIs there a repository at the following location?\n", "Is there a repository at the following location?"},
		{"repository is already locked by PID 1\n", "repository is already locked by PID 1"},
		{"", "no error message"},
		{`{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file\nIs there a repository?"}`, "repository does not exist: unable to open config file"},
	}
	for _, tt := range tests {
		if got := causeOf([]byte(tt.stderr)); got != tt.want {
			t.Errorf("causeOf(%q) = %q, want %q", tt.stderr, got, tt.want)
		}
	}
}

func TestErrorSentinels(t *testing.T) {
	tests := []struct {
		code int
		want error
		text string
	}{
		{exitWrongPassword, ErrWrongPassword, "wrong password"},
		{exitNoRepository, ErrNoRepository, "does not exist"},
		{exitLocked, ErrLocked, "exit 11"},
	}
	for _, tt := range tests {
		err := error(&Error{Op: "backup", Code: tt.code, Msg: "m"})
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("code %d: %v (is %v)", tt.code, err, tt.want)
		}
	}
	if errors.Is(&Error{Code: 1}, ErrNoRepository) {
		t.Error("exit 1 must not look like a missing repository")
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{80, "80 B"},
		{1023, "1023 B"},
		{1024, "1.000 KiB"},
		{1536, "1.500 KiB"},
		{11800000, "11.253 MiB"},
		{11 << 30, "11.000 GiB"},
		{3 << 40, "3.000 TiB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.n); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatProcessingTime(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0:00"},
		{-time.Second, "0:00"},
		{999 * time.Millisecond, "0:00"},
		{75 * time.Second, "1:15"},
		{59*time.Minute + 59*time.Second, "59:59"},
		{time.Hour, "1:00:00"},
		{26*time.Hour + 3*time.Minute + 4*time.Second, "26:03:04"},
	}
	for _, tt := range tests {
		if got := FormatProcessingTime(tt.d); got != tt.want {
			t.Errorf("FormatProcessingTime(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCheckNoParent(t *testing.T) {
	tests := []struct {
		p  string
		ok bool
	}{
		{"/stow-data/a", true},
		{"a/b..c", true},
		{"..hidden", true},
		{"", true},
		{"../etc", false},
		{"/stow-data/../etc", false},
		{"a/..", false},
		{"..", false},
	}
	for _, tt := range tests {
		if err := CheckNoParent(tt.p); (err == nil) != tt.ok {
			t.Errorf("CheckNoParent(%q) = %v, want ok=%v", tt.p, err, tt.ok)
		}
	}
}

func TestRestoreTarget(t *testing.T) {
	tests := []struct {
		name                         string
		backupMount, path, restoreTo string
		want                         string
	}{
		{"whole mount, same mount", "/stow-data", "/stow-data", "/stow-data", "/stow-data"},
		{"whole mount, other mount", "/stow-data", "/stow-data", "/restore", "/restore"},
		{"sub path", "/stow-data", "/stow-data/app/db", "/restore", "/restore/app/db"},
		{"untagged (Stash) snapshot", "", "/stash-data", "/stow-data", "/stow-data"},
		{"path outside its mount", "/a", "/b/c", "/restore", "/restore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RestoreTarget(tt.backupMount, tt.path, tt.restoreTo)
			if err != nil || got != tt.want {
				t.Errorf("RestoreTarget = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRestoreMount(t *testing.T) {
	extra := []string{"/source/config", "/source/config/deeper"}
	tests := []struct {
		name, backupMount, path, want string
		extra                         []string
	}{
		{"one volume", "/source/config", "/source/config", "/source/data", nil},
		{"backed up at an extra mount", "/source/config", "/source/config", "/source/config", extra},
		{"backup mount wins over depth", "/source/config", "/source/config/deeper/x", "/source/config", extra},
		{"untagged (Stash) path under an extra mount", "", "/source/config/deeper/x", "/source/config/deeper", extra},
		{"untagged, first mount", "", "/source/data/x", "/source/data", extra},
		{"under none", "", "/elsewhere", "/source/data", extra},
		{"prefix is not a parent", "", "/source/configs", "/source/data", extra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RestoreMount(tt.backupMount, tt.path, "/source/data", tt.extra); got != tt.want {
				t.Errorf("RestoreMount = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRelativePattern(t *testing.T) {
	tests := []struct{ pattern, path, want string }{
		{"/stow-data/dir/f.txt", "/stow-data", "/dir/f.txt"},
		{"/stow-data", "/stow-data", "/"},
		{"*.log", "/stow-data", "*.log"},
		{"/dir/f.txt", "/stow-data", "/dir/f.txt"},
		{"/stow-database/x", "/stow-data", "/stow-database/x"},
	}
	for _, tt := range tests {
		if got := relativePattern(tt.pattern, tt.path); got != tt.want {
			t.Errorf("relativePattern(%q, %q) = %q, want %q", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestRetentionPolicyArgs(t *testing.T) {
	tests := []struct {
		name  string
		p     RetentionPolicy
		want  string
		empty bool
	}{
		{"empty", RetentionPolicy{Prune: true}, "--prune", true},
		{"negative counts are ignored", RetentionPolicy{KeepLast: -1}, "", true},
		{"all", RetentionPolicy{KeepLast: 5, KeepHourly: 1, KeepDaily: 2, KeepWeekly: 3, KeepMonthly: 4, KeepYearly: 6, KeepTags: []string{"a", ""}, Prune: true, DryRun: true},
			"--keep-last 5 --keep-hourly 1 --keep-daily 2 --keep-weekly 3 --keep-monthly 4 --keep-yearly 6 --keep-tag a --prune --dry-run", false},
		{"tags only", RetentionPolicy{KeepTags: []string{"keep"}}, "--keep-tag keep", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.p.Args(), " "); got != tt.want {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
			if tt.p.IsEmpty() != tt.empty {
				t.Errorf("IsEmpty = %v", tt.p.IsEmpty())
			}
		})
	}
}

func TestPriorityFromEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{}, "nil nil nil", false},
		{map[string]string{"NICE_ADJUSTMENT": "5", "IONICE_CLASS": "2", "IONICE_CLASS_DATA": "7"}, "5 2 7", false},
		{map[string]string{"NICE_ADJUSTMENT": "20"}, "", true},
		{map[string]string{"IONICE_CLASS": "x"}, "", true},
	}
	str := func(p *int) string {
		if p == nil {
			return "nil"
		}
		return strconv.Itoa(*p)
	}
	for _, tt := range tests {
		p, err := PriorityFromEnv(func(k string) string { return tt.env[k] })
		if (err != nil) != tt.wantErr {
			t.Fatalf("%v: err = %v", tt.env, err)
		}
		if err == nil {
			if got := str(p.Nice) + " " + str(p.IONiceClass) + " " + str(p.IONiceClassData); got != tt.want {
				t.Errorf("%v: got %q, want %q", tt.env, got, tt.want)
			}
		}
	}
}
