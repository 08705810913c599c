package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stowhq/stow/bench/internal/results"
)

// measure runs one command to completion and returns its wall time and
// the rusage wait4 reported for it. That rusage covers the process and the
// children it waited for (stow's restic, the shell's cat): CPU time is their
// sum, ru_maxrss the largest single process.
func measure(ctx context.Context, env []string, name string, args ...string) (results.Run, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return results.Run{}, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, lastLine(out.buf.String()))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return results.Run{}, errors.New("no rusage from wait4")
	}
	return results.Run{
		WallS:     wall.Seconds(),
		UserS:     time.Duration(ru.Utime.Nano()).Seconds(),
		SysS:      time.Duration(ru.Stime.Nano()).Seconds(),
		MaxRSSKiB: ru.Maxrss, // KiB on Linux
	}, nil
}

// tail keeps the last max bytes written: enough for the cause of a failure
// without holding the output of a 500k-file backup.
type tail struct {
	max int
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// dropCaches writes back dirty pages and drops the page cache (root only).
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// dirSize is the apparent size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// sameTree reports the first difference between the regular files of want
// and got (content, and files only on one side).
func sameTree(want, got string) error {
	seen := 0
	err := filepath.WalkDir(want, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen++
		return sameFile(p, filepath.Join(got, rel))
	})
	if err != nil {
		return err
	}
	n := 0
	if err := filepath.WalkDir(got, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			n++
		}
		return err
	}); err != nil {
		return err
	}
	if n != seen {
		return fmt.Errorf("restored %d files, want %d", n, seen)
	}
	return nil
}

func sameFile(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("missing after restore: %v", err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := fullRead(fa, ba)
		nb, _ := fullRead(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("%s differs after restore", b)
		}
		if ea != nil {
			return nil
		}
	}
}

// fullRead fills buf unless the file ends first (then err is non-nil).
func fullRead(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := f.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// copyTree copies the directories and regular files under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, info.Mode().Perm())
		default:
			return fmt.Errorf("copyTree: %s is neither a file nor a directory", p)
		}
	})
}
