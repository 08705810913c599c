package restic

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLockPolicyJudge(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	asked := map[string]int{}
	p := LockPolicy{
		Self:       "stow-0123abcd-self",
		HostPrefix: "stow-0123abcd-",
		HolderRuns: func(_ context.Context, host string) (bool, error) {
			asked[host]++
			switch host {
			case "stow-0123abcd-gone":
				return false, nil
			case "stow-0123abcd-unknown":
				return false, errors.New("operator unreachable")
			}
			return true, nil
		},
		Now: func() time.Time { return now },
	}
	cases := []struct {
		name string
		lock LockInfo
		want LockVerdict
	}{
		{"foreign, fresh", LockInfo{Hostname: "laptop", Time: now.Add(-time.Minute)}, LockLive},
		{"foreign, exclusive, fresh", LockInfo{Hostname: "laptop", Exclusive: true, Time: now}, LockLive},
		{"foreign, older than restic's stale age", LockInfo{Hostname: "laptop", Time: now.Add(-31 * time.Minute)}, LockStaleForRestic},
		{"this pod", LockInfo{Hostname: "stow-0123abcd-self", Time: now}, LockStaleForRestic},
		{"stow pod that no longer runs", LockInfo{Hostname: "stow-0123abcd-gone", Time: now}, LockHolderGone},
		{"stow pod that runs", LockInfo{Hostname: "stow-0123abcd-runs", Time: now}, LockLive},
		{"operator cannot tell", LockInfo{Hostname: "stow-0123abcd-unknown", Time: now}, LockLive},
		{"another cluster's stow pod", LockInfo{Hostname: "stow-ffffffff-gone", Time: now}, LockLive},
		{"unreadable lock", LockInfo{Hostname: "stow-0123abcd-gone", Error: "bad", Time: now.Add(-time.Hour)}, LockLive},
	}
	for _, tc := range cases {
		if got := p.Judge(context.Background(), tc.lock); got != tc.want {
			t.Errorf("%s: Judge = %v, want %v", tc.name, got, tc.want)
		}
	}
	if asked["stow-ffffffff-gone"] != 0 || asked["laptop"] != 0 {
		t.Errorf("asked the operator about hosts that are not this cluster's Stow pods: %v", asked)
	}
}

func TestLockedErrorNamesHolder(t *testing.T) {
	since := time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)
	err := error(&LockedError{Op: "forget", Holders: []LockInfo{{Hostname: "laptop", Username: "ops", PID: 7, Exclusive: true, Time: since}}})
	if !errors.Is(err, ErrLocked) {
		t.Error("LockedError is not ErrLocked")
	}
	for _, want := range []string{"forget", "exclusive lock of ops@laptop pid 7", "since 2026-01-01T11:00:00Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not contain %q", err, want)
		}
	}
}

func TestCheckArgs(t *testing.T) {
	ok := [][]string{
		nil,
		{"--exclude-caches", "--one-file-system"},
		{"--exclude", "*.tmp", "-e", "*.log", "-e*.bak", "--exclude=cache/"},
		{"-xv", "--limit-upload", "1024", "--compression=max", "-o", "s3.storage-class=STANDARD_IA"},
		{"--skip-if-unchanged", "--read-concurrency", "4"},
	}
	for _, a := range ok {
		if err := CheckBackupArgs(a); err != nil {
			t.Errorf("CheckBackupArgs(%q) = %v", a, err)
		}
	}
	bad := map[string][]string{
		"--host":               {"--host", "other"},
		"-H":                   {"-Hother"},
		"--tag":                {"--tag=stow-ns=victim"},
		"--repo":               {"--repo", "s3:x/y"},
		"-r":                   {"-r", "/tmp/repo"},
		"--password-file":      {"--password-file=/x"},
		"--files-from":         {"--files-from", "/etc/list"},
		"--stdin":              {"--stdin"},
		"--stdin-from-command": {"--stdin-from-command"},
		"/proc":                {"/proc"},
		"--cache-dir":          {"--cache-dir", "/x"},
		"--no-lock":            {"--no-lock"},
		"--dry-run":            {"--dry-run"},
		"-n":                   {"-xn"},
		"--insecure-tls":       {"--insecure-tls"},
		"--exclude-caches=x":   {"--exclude-caches=x"},
	}
	for name, a := range bad {
		err := CheckBackupArgs(a)
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("CheckBackupArgs(%s: %q) = %v, want a refusal", name, a, err)
		}
	}
	if err := CheckBackupArgs([]string{"--exclude"}); err == nil || !strings.Contains(err.Error(), "needs a value") {
		t.Errorf("a flag without its value = %v", err)
	}
	if err := CheckRestoreArgs([]string{"--include", "/data", "--verify", "--overwrite", "if-newer", "--delete"}); err != nil {
		t.Errorf("CheckRestoreArgs = %v", err)
	}
	for _, a := range [][]string{{"--target", "/"}, {"-t/"}, {"--host", "x"}, {"--include", "../../etc"}, {"-i../x"}, {"--dry-run"}, {"latest"}} {
		if err := CheckRestoreArgs(a); err == nil {
			t.Errorf("CheckRestoreArgs(%q) = nil, want a refusal", a)
		}
	}
}
