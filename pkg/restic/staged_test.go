package restic

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseTextRestore(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      wholeRestore
	}{
		{"complete", "restoring snapshot 88000c88 of [/data/big] at 2026-12-03 20:09:44.29 +0000 UTC by root@h to /t/.stow-restore-1\nSummary: Restored 7 files/dirs (2.000 GiB) in 0:04\n",
			wholeRestore{shortID: "88000c88", files: 7}},
		{"partial summary", "Info: x\nrestoring snapshot 0123abcd of [/a /b] at t by u@h to /t\nSummary: Restored 5 / 9 files/dirs (1 KiB / 2 KiB) in 0:01, skipped 4 files/dirs 1 KiB\n",
			wholeRestore{shortID: "0123abcd", files: 9}},
		{"no output", "", wholeRestore{files: -1}},
		{"a path that looks like a line", "restoring snapshot 0123abcd of [/x\nrestoring snapshot ffffffff of ] at t by u@h to /t\n",
			wholeRestore{shortID: "0123abcd", files: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseTextRestore([]byte(tc.out)); got != tc.want {
				t.Errorf("parseTextRestore = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStagedMoves(t *testing.T) {
	const id = "88000c88aaaabbbbccccddddeeeeffff0000111122223333444455556666777"
	mount := t.TempDir()
	stage := filepath.Join(mount, stagePrefix+"1")
	for _, p := range []string{"/data/big", "/data/big/sub", "/data/other", "/file/x"} {
		if err := os.MkdirAll(filepath.Join(stage, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "/file/x/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stage, "/clash", stagePrefix+"1"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := wholeRestore{shortID: id[:8], files: 3}
	snap := func(mountTag string, paths ...string) *Snapshot {
		s := &Snapshot{ID: id, ShortID: id[:8], Paths: paths}
		if mountTag != "" {
			s.Tags = []string{MountTagKey + "=" + mountTag}
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		snap     *Snapshot
		restored wholeRestore
		want     []stagedMove // nil: not placeable
	}{
		{"one path at its mount", snap("/data/big", "/data/big"), ok,
			[]stagedMove{{path: "/data/big", src: filepath.Join(stage, "data/big"), target: mount}}},
		{"a path below its mount", snap("/data", "/data/big"), ok,
			[]stagedMove{{path: "/data/big", src: filepath.Join(stage, "data/big"), target: filepath.Join(mount, "big")}}},
		{"two paths, two targets", snap("/data", "/data/big", "/data/other"), ok,
			[]stagedMove{{path: "/data/big", src: filepath.Join(stage, "data/big"), target: filepath.Join(mount, "big")},
				{path: "/data/other", src: filepath.Join(stage, "data/other"), target: filepath.Join(mount, "other")}}},
		{"the restore chose another snapshot", snap("/data/big", "/data/big"), wholeRestore{shortID: "ffffffff", files: 3}, nil},
		{"the restore named no snapshot", snap("/data/big", "/data/big"), wholeRestore{files: 3}, nil},
		{"no mount tag: two paths into one target", snap("", "/data/big", "/data/other"), ok, nil},
		{"nested paths", snap("/data", "/data/big", "/data/big/sub"), ok, nil},
		{"a path that is a file", snap("/file/x/f", "/file/x/f"), ok, nil},
		{"a path restic did not restore", snap("/missing", "/missing"), ok, nil},
		{"a relative path", snap("", "data/big"), ok, nil},
		{"an entry named like the stage", snap("/clash", "/clash"), ok, nil},
		{"no paths", snap(""), ok, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, placeable := stagedMoves(tc.snap, tc.restored, stage, mount)
			if placeable != (tc.want != nil) {
				t.Fatalf("stagedMoves = %+v, %v; want placeable %v", got, placeable, tc.want != nil)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("stagedMoves = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("move %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
