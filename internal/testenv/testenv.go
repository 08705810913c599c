// Package testenv starts the external programs Stow's integration and e2e
// tests need (restic, a MinIO server) and finds their binaries.
//
// Integration tests are skipped only with -short. Without -short a missing
// binary fails the test with a message that says how to build it
// (hack/tools.sh): a suite that silently skips proves nothing.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ToolsHint says how to get the external tools.
const ToolsHint = "run hack/tools.sh (or `make tools`) to build restic and minio into $HOME/.cache/stow/bin"

// SkipIfShort skips an integration test under -short.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
}

// FindTool finds an external tool: $<envVar>, then PATH, then
// $HOME/.cache/stow/bin (where hack/tools.sh puts it).
func FindTool(name, envVar string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if executable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s is not an executable file", envVar, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "stow", "bin", name)
		if executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (looked at $%s, PATH, $HOME/.cache/stow/bin): %s", name, envVar, ToolsHint)
}

// Restic returns the restic binary, skipping under -short and failing the
// test when it is missing.
func Restic(t testing.TB) string {
	t.Helper()
	SkipIfShort(t)
	p, err := FindTool("restic", "STOW_RESTIC")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// MinIOBinary returns the minio binary, skipping under -short and failing the
// test when it is missing.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	SkipIfShort(t)
	p, err := FindTool("minio", "STOW_MINIO")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// MinIO is a running MinIO server on loopback.
type MinIO struct {
	// Endpoint is http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Dir holds the server's data.
	Dir string
}

// S3Repository is a restic repository string for bucket/prefix on this server.
func (m *MinIO) S3Repository(bucket, prefix string) string {
	r := "s3:" + m.Endpoint + "/" + bucket
	if prefix != "" {
		r += "/" + strings.Trim(prefix, "/")
	}
	return r
}

// Env is the AWS_* credentials for this server.
func (m *MinIO) Env() map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey}
}

// StartMinIO starts a MinIO server on 127.0.0.1 with a free port and a fresh
// temp dir, waits until /minio/health/ready answers 200, and stops it when
// the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	m := &MinIO{AccessKey: "stow-" + randomHex(4), SecretKey: randomHex(16), Dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		// The port may be taken between picking and binding: retry.
		port, console := FreePort(t), FreePort(t)
		m.Endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		if lastErr = m.start(t, bin, port, console); lastErr == nil {
			return m
		}
	}
	t.Fatalf("starting minio: %v", lastErr)
	return nil
}

func (m *MinIO) start(t testing.TB, bin string, port, console int) error {
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(console),
		m.Dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	logf, err := os.Create(filepath.Join(t.TempDir(), "minio.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			logf.Close()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ready := m.Endpoint + "/minio/health/ready"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			stop()
			return fmt.Errorf("minio exited before it was ready (%v): %s", waitErr, tail(logf.Name()))
		case <-ctx.Done():
			stop()
			return fmt.Errorf("minio not ready at %s after 60s: %s", ready, tail(logf.Name()))
		case <-tick.C:
		}
		if healthy(ctx, ready) {
			t.Cleanup(stop)
			return nil
		}
	}
}

func healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SharedCopy copies an executable into a fresh directory that every user may
// read and traverse, so it can run under another uid (the tools cache lives
// under root's 0700 home).
func SharedCopy(t testing.TB, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stow-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(bin))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// BuildStow builds the stow binary (cmd/stow) into a temp dir once per test
// binary and returns its path.
func BuildStow(t testing.TB) string {
	t.Helper()
	stowOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stow-cli-")
		if err != nil {
			stowErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		stowPath = filepath.Join(dir, "stow")
		cmd := exec.Command("go", "build", "-o", stowPath, "github.com/stowhq/stow/cmd/stow")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			stowErr = fmt.Errorf("go build cmd/stow: %v\n%s", err, out)
			return
		}
		// A Job step (the operator's contract in its environment) runs the
		// restic next to stow, as in the image, never $STOW_RESTIC.
		if r, err := FindTool("restic", "STOW_RESTIC"); err == nil {
			if err := os.Symlink(r, filepath.Join(dir, "restic")); err != nil {
				stowErr = err
			}
		}
	})
	if stowErr != nil {
		t.Fatal(stowErr)
	}
	return stowPath
}

var (
	stowOnce sync.Once
	stowPath string
	stowErr  error
)

// Cleanup removes what BuildStow built; call it from TestMain after m.Run.
func Cleanup() {
	if stowPath != "" {
		_ = os.RemoveAll(filepath.Dir(stowPath))
	}
}
