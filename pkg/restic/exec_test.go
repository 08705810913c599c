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
