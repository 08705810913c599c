package restic

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// fakeRestic writes a shell script standing in for restic.
func fakeRestic(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "restic")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeLocation(t *testing.T) *Location {
	t.Helper()
	loc, err := NewLocation(v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://127.0.0.1:1/r"}},
		map[string]string{KeyResticPassword: "pw-123456", KeyRestServerUsername: "u", KeyRestServerPassword: "rest-pw-789"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSecretsOnlyInEnvironment(t *testing.T) {
	bin := fakeRestic(t, `echo "ARGS $*"; echo "PW $RESTIC_PASSWORD"; echo "REPO $RESTIC_REPOSITORY"; env | grep -c ^UNRELATED_ || true`)
	t.Setenv("UNRELATED_SECRET", "x")
	var logged []string
	r := &Restic{Binary: bin, Location: fakeLocation(t), Logf: func(f string, a ...any) {
		logged = append(logged, strings.TrimSpace(strings.ReplaceAll(f, "%s", "")))
		for _, v := range a {
			logged = append(logged, toString(v))
		}
	}}
	out, err := r.Run(context.Background(), "snapshots", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 {
		t.Fatalf("output %q", out)
	}
	if strings.Contains(lines[0], "pw-") || !strings.Contains(lines[0], "--no-cache snapshots --json") {
		t.Errorf("args = %q", lines[0])
	}
	if lines[1] != "PW pw-123456" || lines[2] != "REPO rest:http://u:rest-pw-789@127.0.0.1:1/r" {
		t.Errorf("env: %q %q", lines[1], lines[2])
	}
	if lines[3] != "0" {
		t.Errorf("restic inherited unrelated variables")
	}
	for _, l := range logged {
		if strings.Contains(l, "pw-123456") || strings.Contains(l, "rest-pw-789") {
			t.Errorf("log leaks a secret: %q", l)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		is      error
		wantMsg string
	}{
		{"wrong password", `echo '{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}' >&2; exit 12`, ErrWrongPassword, "wrong password"},
		{"no repository", `echo 'Fatal: repository does not exist: unable to open config file' >&2; exit 10`, ErrNoRepository, "does not exist"},
		{"secret in stderr is redacted", `echo "cannot reach rest:http://u:rest-pw-789@127.0.0.1:1/r" >&2; exit 1`, nil, "u:***@127.0.0.1"},
		{"killed", `kill -9 $$`, nil, "killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Restic{Binary: fakeRestic(t, tt.body), Location: fakeLocation(t)}
			_, err := r.Run(context.Background(), "cat", "config")
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "rest-pw-789") {
				t.Errorf("err = %q, want containing %q and no secret", err, tt.wantMsg)
			}
		})
	}
}

func TestEnsureRepositoryNeverInitsOnOtherErrors(t *testing.T) {
	tests := []struct {
		name     string
		catCode  int
		wantInit bool
		is       error
	}{
		{"missing repository is initialized", 10, true, nil},
		{"wrong password is not", 12, false, ErrWrongPassword},
		{"network error is not", 1, false, nil},
		{"existing repository is not", 0, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "init-ran")
			body := `case "$*" in
*" init "*) touch ` + marker + `; exit 0;;
esac
exit ` + strconv.Itoa(tt.catCode) + "\n"
			r := &Restic{Binary: fakeRestic(t, body), Location: fakeLocation(t)}
			created, err := r.EnsureRepository(context.Background())
			_, statErr := os.Stat(marker)
			ran := statErr == nil
			if ran != tt.wantInit || created != tt.wantInit {
				t.Errorf("init ran=%v created=%v, want %v (err %v)", ran, created, tt.wantInit, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if (tt.catCode == 0 || tt.catCode == 10) != (err == nil) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// The first real operation doubles as the probe: a missing repository is
// initialized and the operation runs again; anything else runs it once.
func TestWithRepositoryRunsOpAgainAfterInit(t *testing.T) {
	tests := []struct {
		name      string
		firstCode int
		wantRuns  int
		wantInit  bool
		is        error
	}{
		{"missing repository", 10, 2, true, nil},
		{"existing repository", 0, 1, false, nil},
		{"wrong password", 12, 1, false, ErrWrongPassword},
		{"locked", 11, 1, false, ErrLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			initMarker := filepath.Join(dir, "init-ran")
			// Before init the command exits with firstCode; after it, 0.
			body := `case "$*" in
*" init "*) touch ` + initMarker + `; exit 0;;
esac
echo run >> ` + filepath.Join(dir, "runs") + `
[ -e ` + initMarker + ` ] && exit 0
exit ` + strconv.Itoa(tt.firstCode) + "\n"
			r := &Restic{Binary: fakeRestic(t, body), Location: fakeLocation(t)}
			created, err := r.WithRepository(context.Background(), func(ctx context.Context) error {
				_, err := r.Run(ctx, "list", "locks")
				return err
			})
			runs, _ := os.ReadFile(filepath.Join(dir, "runs"))
			if n := strings.Count(string(runs), "run"); n != tt.wantRuns || created != tt.wantInit {
				t.Errorf("op ran %d times, created=%v; want %d, %v (err %v)", n, created, tt.wantRuns, tt.wantInit, err)
			}
			if (tt.is == nil) != (err == nil) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

// A backup into a bucket that does not exist ends at restic's first retry
// message as ErrNoRepository, not after restic's 15 minutes of retries.
func TestBackupMissingBucketIsNoRepository(t *testing.T) {
	bin := fakeRestic(t, `echo 'Load(<config/0000000000>, 0, 0) returned error, retrying after 720ms: The specified bucket does not exist' >&2
exec sleep 60
`)
	r := &Restic{Binary: bin, Location: fakeLocation(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := r.Backup(ctx, t.TempDir(), BackupOptions{})
	if !errors.Is(err, ErrNoRepository) || ctx.Err() != nil {
		t.Fatalf("err = %v (ctx %v), want ErrNoRepository before the deadline", err, ctx.Err())
	}
}

func TestPriorityAppliedToChildOnly(t *testing.T) {
	// Field 19 of /proc/<pid>/stat is the nice value.
	bin := fakeRestic(t, `cut -d' ' -f19 /proc/$$/stat`)
	before, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	nice, class, data := 7, 2, 6
	r := &Restic{Binary: bin, Location: fakeLocation(t), Priority: Priority{Nice: &nice, IONiceClass: &class, IONiceClassData: &data}}
	out, err := r.Run(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "7" {
		t.Errorf("child nice = %q, want 7", got)
	}
	after, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if after != before {
		t.Errorf("the test process's priority changed from %d to %d", before, after)
	}
}

// A backend that went away makes restic retry each request for 15 minutes;
// with BackendRetryLimit the run stops once retries have gone on that long
// and says the backend is unreachable. A retry followed by a long quiet gap
// (the backend recovered) starts the count afresh.
func TestBackendRetryLimit(t *testing.T) {
	retry := `Save(<data/1234>) returned error, retrying after 1.5s: Put "http://10.0.0.1:9000/b/data/1234": dial tcp 10.0.0.1:9000: connect: connection refused`
	t.Run("stops a run that keeps retrying", func(t *testing.T) {
		// The fake restic prints retry lines forever; the fake clock
		// advances 20s per line.
		bin := fakeRestic(t, `while true; do echo '`+retry+`' >&2; sleep 0.01; done`)
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		r := &Restic{Binary: bin, Location: fakeLocation(t), BackendRetryLimit: time.Minute,
			now: func() time.Time { clock = clock.Add(20 * time.Second); return clock }}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := r.Run(ctx, "backup", "/data")
		if err == nil || !strings.Contains(err.Error(), "backend unreachable") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v; want a backend-unreachable error naming the cause", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("the run was not stopped by the retry limit")
		}
	})
	t.Run("watcher", func(t *testing.T) {
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		w := &retryWatch{limit: time.Minute, now: func() time.Time { return clock }}
		steps := []struct {
			advance time.Duration
			line    string
			want    bool
		}{
			{0, retry, false},
			{30 * time.Second, "some other line", false},
			{0, retry, false},
			{2 * time.Minute, retry, false}, // quiet gap: recovered, count restarts
			{50 * time.Second, retry, false},
			{20 * time.Second, retry, true},
		}
		for i, s := range steps {
			clock = clock.Add(s.advance)
			if got := w.exceeded(s.line); got != s.want {
				t.Fatalf("step %d: exceeded = %v; want %v", i, got, s.want)
			}
		}
		if (&retryWatch{}).exceeded(retry) {
			t.Error("a zero limit must never stop restic")
		}
	})
}

// restic's --json progress (60 lines a second, all buffered until exit)
// must be slowed down for every run.
func TestProgressIsRateLimited(t *testing.T) {
	r := &Restic{Binary: fakeRestic(t, `echo "$RESTIC_PROGRESS_FPS"`), Location: fakeLocation(t)}
	out, err := r.Run(context.Background(), "backup", "--json")
	if err != nil {
		t.Fatal(err)
	}
	fps, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || fps <= 0 || fps > 0.1 {
		t.Errorf("RESTIC_PROGRESS_FPS = %q, want a positive rate of at most one line per 10 s", out)
	}
}
