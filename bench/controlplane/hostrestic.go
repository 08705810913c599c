package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bareRestic runs restic on the cluster's host, as a user would run it by
// hand: its own repository and a cache kept between runs.
type bareRestic struct {
	bin, repo, cache string
}

// run runs restic with args and returns its wall time and stdout.
func (r *bareRestic) run(ctx context.Context, stdin io.Reader, args ...string) (time.Duration, []byte, error) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	// Only what restic needs: the harness's own RESTIC_* (if any) must not
	// leak in.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"RESTIC_REPOSITORY=" + r.repo, "RESTIC_PASSWORD=" + benchPasswd, "RESTIC_CACHE_DIR=" + r.cache}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, nil, fmt.Errorf("restic %s: %v: %s", strings.Join(args, " "), err, lastLine(errb.String()))
	}
	return d, out.Bytes(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (r *bareRestic) init(ctx context.Context) error {
	_, _, err := r.run(ctx, nil, "init")
	return err
}

// backup backs up dir as host and returns the wall time and the snapshot id.
func (r *bareRestic) backup(ctx context.Context, dir, host string) (time.Duration, string, error) {
	d, out, err := r.run(ctx, nil, "backup", "--json", "--host", host, dir)
	if err != nil {
		return d, "", err
	}
	id, err := summaryID(out)
	return d, id, err
}

// summaryID is the snapshot id of restic backup --json's summary line.
func summaryID(out []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct {
			Type string `json:"message_type"`
			ID   string `json:"snapshot_id"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Type == "summary" && m.ID != "" {
			return m.ID, nil
		}
	}
	return "", errors.New("restic backup printed no summary")
}

// forget applies keep-last n to host's snapshots (what a session's
// retention does after its backup) and returns the wall time.
func (r *bareRestic) forget(ctx context.Context, host string, n int) (time.Duration, error) {
	d, _, err := r.run(ctx, nil, "forget", "--host", host, "--keep-last", strconv.Itoa(n))
	return d, err
}

// restore restores dir of snapshot id into target (empty).
func (r *bareRestic) restore(ctx context.Context, id, dir, target string) (time.Duration, error) {
	d, _, err := r.run(ctx, nil, "restore", id+":"+dir, "--target", target)
	return d, err
}

// grow adds n bytes of random data as one snapshot of host, read from stdin
// (nothing is written to disk but the repository).
func (r *bareRestic) grow(ctx context.Context, host string, n int64, seed uint64) error {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	src := io.LimitReader(rand.NewChaCha8(s), n)
	_, _, err := r.run(ctx, src, "backup", "--stdin", "--stdin-filename", host+".bin", "--host", host, "--quiet")
	return err
}

// repoSize is the bytes on disk under dir and the number of snapshots of
// the restic repository there.
func repoSize(dir string) (bytes int64, snapshots int, err error) {
	_, bytes, err = tally(dir)
	if err != nil {
		return 0, 0, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	return bytes, len(entries), err
}

// chownTree gives dir and everything in it to uid:gid: what restic wrote on
// the host as root must stay readable to the Jobs, which run as nobody.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
