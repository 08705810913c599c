package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Restic exit codes (restic 0.17+, cmd/restic/main.go).
const (
	exitFatal         = 1
	exitPartialSource = 3  // snapshot written but some source files were unreadable
	exitNoRepository  = 10 // the repository does not exist
	exitLocked        = 11 // the repository is locked by someone else
	exitWrongPassword = 12 // no key in the repository opens with this password
	exitInterrupted   = 130
)

// Errors that callers branch on; match them with errors.Is.
var (
	ErrNoRepository  = errors.New("repository does not exist")
	ErrWrongPassword = errors.New("wrong password")
	ErrLocked        = errors.New("repository is locked")
)

// Error is a failed restic run: which operation, restic's exit code and its
// one-line cause (secrets removed).
type Error struct {
	Op   string
	Code int
	Msg  string
}

func (e *Error) Error() string {
	switch e.Code {
	case exitWrongPassword:
		return fmt.Sprintf("restic %s: wrong password: no key in the repository opens with RESTIC_PASSWORD", e.Op)
	case exitNoRepository:
		return fmt.Sprintf("restic %s: repository does not exist: %s", e.Op, e.Msg)
	}
	return fmt.Sprintf("restic %s: %s (exit %d)", e.Op, e.Msg, e.Code)
}

// Unwrap maps the exit code to one of the sentinel errors.
func (e *Error) Unwrap() error {
	switch e.Code {
	case exitNoRepository:
		return ErrNoRepository
	case exitWrongPassword:
		return ErrWrongPassword
	case exitLocked:
		return ErrLocked
	}
	return nil
}

// Priority is the CPU and IO priority restic runs with. Nil fields leave the
// inherited value.
type Priority struct {
	Nice            *int
	IONiceClass     *int
	IONiceClassData *int
}

// PriorityFromEnv reads NICE_ADJUSTMENT, IONICE_CLASS and IONICE_CLASS_DATA
// (set from a BackupConfiguration's runtimeSettings).
func PriorityFromEnv(getenv func(string) string) (Priority, error) {
	var p Priority
	for _, f := range []struct {
		key      string
		dst      **int
		min, max int
	}{
		{"NICE_ADJUSTMENT", &p.Nice, -20, 19},
		{"IONICE_CLASS", &p.IONiceClass, 0, 3},
		{"IONICE_CLASS_DATA", &p.IONiceClassData, 0, 7},
	} {
		v := strings.TrimSpace(getenv(f.key))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < f.min || n > f.max {
			return p, fmt.Errorf("%s=%q: want an integer in [%d, %d]", f.key, v, f.min, f.max)
		}
		*f.dst = &n
	}
	return p, nil
}

func (p Priority) isSet() bool {
	return p.Nice != nil || p.IONiceClass != nil || p.IONiceClassData != nil
}

// Restic runs the restic binary against one repository.
type Restic struct {
	// Binary is the restic executable (see FindBinary).
	Binary string
	// Location is the repository and its environment.
	Location *Location
	// CacheDir is restic's cache; empty runs with --no-cache.
	CacheDir string
	// TempDir becomes TMPDIR for restic; empty keeps the inherited one.
	TempDir string
	// Priority is applied to the restic process (nice / ionice).
	Priority Priority
	// Credential, when set, runs restic as another uid/gid.
	Credential *syscall.Credential
	// Logf receives restic's stderr lines and the commands run, redacted.
	// Nil discards them.
	Logf func(format string, args ...any)
	// BackendRetryLimit stops restic once it has been retrying failed
	// backend requests without pause for this long (restic itself retries
	// each request for 15 minutes, so a backend that went away would hold
	// the Job that long). Zero leaves restic's own limit.
	BackendRetryLimit time.Duration
	// RetryLock makes restic wait up to this long for a lock held by someone
	// else (--retry-lock) before it fails with ErrLocked. WaitForLock sets
	// it per attempt.
	RetryLock time.Duration
	// LocksRemoved counts the stale locks RemoveStaleLocks removed.
	LocksRemoved int
	// now is the clock of the retry watcher; nil uses time.Now.
	now func() time.Time
}

// retryQuiet is the gap between restic's retry messages after which a
// backend counts as recovered: restic's backoff never waits longer than a
// minute between attempts of a request that keeps failing.
const retryQuiet = 90 * time.Second

// retryWatch tells when restic has been retrying backend requests for
// longer than limit: consecutive "returned error, retrying" messages with no
// gap over retryQuiet between them.
type retryWatch struct {
	limit       time.Duration
	now         func() time.Time
	first, last time.Time
	lastLine    string
}

func (w *retryWatch) exceeded(line string) bool {
	if w == nil || w.limit <= 0 || !strings.Contains(line, "returned error, retrying") {
		return false
	}
	t := w.now()
	if w.first.IsZero() || t.Sub(w.last) > retryQuiet {
		w.first = t
	}
	w.last, w.lastLine = t, line
	return t.Sub(w.first) >= w.limit
}

// cause is the one-line error of a run the watcher stopped.
func (w *retryWatch) cause() string {
	msg := w.lastLine
	if i := strings.Index(msg, "returned error, retrying after "); i >= 0 {
		rest := msg[i+len("returned error, retrying after "):]
		if j := strings.Index(rest, ": "); j >= 0 {
			msg = rest[j+2:]
		}
	}
	return fmt.Sprintf("backend unreachable: restic retried for %s without success: %s", w.limit, strings.TrimSpace(msg))
}

// progressFPS is how often restic reports progress: once a minute.
const progressFPS = "0.0167"

// Run runs restic with args and returns its stdout. A non-zero exit becomes
// an *Error whose message is restic's own cause.
func (r *Restic) Run(ctx context.Context, args ...string) ([]byte, error) {
	res, err := r.run(ctx, args)
	if err != nil {
		return nil, err
	}
	if res.code != 0 {
		return res.stdout, res.err(opName(args))
	}
	return res.stdout, nil
}

type runResult struct {
	stdout []byte
	stderr []byte // the last stderrKeep bytes
	code   int
	redact []string
	// aborted is set when a watcher interrupted restic.
	aborted bool
}

const stderrKeep = 64 << 10

// err builds the one-line cause of a failed run from restic's exit_error
// JSON message or, failing that, the last meaningful stderr line.
func (res *runResult) err(op string) *Error {
	return &Error{Op: op, Code: res.code, Msg: redact(causeOf(res.stderr), res.redact)}
}

func (r *Restic) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

func (r *Restic) command(ctx context.Context, args []string) (*exec.Cmd, error) {
	if r.Location == nil {
		return nil, errors.New("restic: no repository location")
	}
	bin := r.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	full := append([]string{}, r.Location.Flags...)
	if r.CacheDir != "" {
		full = append(full, "--cache-dir", r.CacheDir)
	} else {
		full = append(full, "--no-cache")
	}
	if r.RetryLock > 0 {
		full = append(full, "--retry-lock", r.RetryLock.Round(time.Second).String())
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = r.environ()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	// SIGINT lets restic remove its lock; kill it if it does not stop.
	cmd.WaitDelay = 30 * time.Second
	if r.Credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.Credential}
	}
	r.logf("running restic %s (repository %s)", strings.Join(full, " "), r.Location.Display())
	return cmd, nil
}

// environ is a minimal base environment plus the repository's: restic gets
// no variables it was not meant to see (another repository, another password).
func (r *Restic) environ() []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "TZ", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if r.TempDir != "" {
		env = append(env, "TMPDIR="+r.TempDir)
	}
	// With --json restic prints a progress line 60 times a second, all kept
	// in memory until restic exits: ~40 MB for an hour-long backup. One a
	// minute is plenty.
	env = append(env, "RESTIC_PROGRESS_FPS="+progressFPS)
	for k, v := range r.Location.Env {
		env = append(env, k+"="+v)
	}
	return env
}

func (r *Restic) run(ctx context.Context, args []string) (*runResult, error) {
	return r.runWatch(ctx, args, nil)
}

// runWatch is run with a stderr watcher: when watch returns true for a line,
// restic is interrupted and the result has aborted set. It stops restic
// retrying for minutes on an error that cannot go away by itself.
func (r *Restic) runWatch(ctx context.Context, args []string, watch func(line string) bool) (*runResult, error) {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var aborted bool
	now := r.now
	if now == nil {
		now = time.Now
	}
	retries := &retryWatch{limit: r.BackendRetryLimit, now: now}
	var unreachable bool
	cmd, err := r.command(ctx, args)
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	tail := &tailBuffer{max: stderrKeep}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderrR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			tail.Write([]byte(line + "\n"))
			r.logf("restic: %s", redact(line, r.Location.Redact))
			if watch != nil && !aborted && watch(line) {
				aborted = true
				cancel()
			}
			if !aborted && !unreachable && retries.exceeded(line) {
				unreachable = true
				cancel()
			}
		}
		_, _ = io.Copy(io.Discard, stderrR)
	}()
	err = r.start(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	_ = stderrW.Close()
	wg.Wait()
	res := &runResult{stdout: stdout.Bytes(), stderr: tail.Bytes(), redact: r.Location.Redact, aborted: aborted}
	if aborted {
		return res, nil
	}
	if unreachable {
		res.code = exitInterrupted
		return res, &Error{Op: opName(args), Code: res.code, Msg: redact(retries.cause(), r.Location.Redact)}
	}
	ctx = parent
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("running restic: %v", err)
		}
		res.code = ee.ExitCode()
		if res.code < 0 { // killed by a signal
			res.code = exitInterrupted
			if ctx.Err() == nil {
				return res, &Error{Op: opName(args), Code: res.code, Msg: "restic was killed: " + ee.String()}
			}
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("restic %s: %v", opName(args), ctx.Err())
		}
	}
	return res, nil
}

// start starts cmd. With a Priority set, it starts cmd from a dedicated OS
// thread that first lowers its own CPU and IO priority: a forked child
// inherits both, and no nice/ionice binaries are needed in the image. The
// thread is never unlocked, so Go discards it afterwards instead of reusing
// a thread with lowered priority.
func (r *Restic) start(cmd *exec.Cmd) error {
	if !r.Priority.isSet() {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread: see above.
		if err := applyPriority(r.Priority); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

func applyPriority(p Priority) error {
	if p.Nice != nil {
		// who=0 is the calling thread on Linux.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, *p.Nice); err != nil {
			return fmt.Errorf("setting nice %d: %v", *p.Nice, err)
		}
	}
	if p.IONiceClass != nil || p.IONiceClassData != nil {
		class, data := 2, 4 // best-effort, normal: the kernel's default
		if p.IONiceClass != nil {
			class = *p.IONiceClass
		}
		if p.IONiceClassData != nil {
			data = *p.IONiceClassData
		}
		const ioprioWhoProcess = 1
		prio := class<<13 | data
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); errno != 0 {
			return fmt.Errorf("setting ionice class %d data %d: %v", class, data, errno)
		}
	}
	return nil
}

// opName is the restic subcommand in args, for messages.
func opName(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return "command"
}

// causeOf finds the best one-line cause in restic's stderr.
func causeOf(stderr []byte) string {
	var last string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "{") {
			var m struct {
				MessageType string `json:"message_type"`
				Message     string `json:"message"`
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.MessageType == "exit_error" && m.Message != "" {
				return oneLine(m.Message)
			}
			continue
		}
		last = line
	}
	if last == "" {
		return "no error message"
	}
	return oneLine(last)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "Fatal: ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// JobBinary locates restic for a step of a Stow Job: the restic next to this
// executable (the image keeps stow and restic in /usr/local/bin). It never
// reads the environment: in a Job that is partly the user's (envFrom
// sources), and $STOW_RESTIC or $PATH would make the runner execute a
// program of their choosing with the repository's credentials.
func JobBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("restic: cannot locate the runner's executable: %v", err)
	}
	p := filepath.Join(filepath.Dir(exe), "restic")
	if !isExecutable(p) {
		return "", fmt.Errorf("restic not found at %s: a Stow Job runs the restic next to the runner, never $STOW_RESTIC or $PATH (docs/security.md)", p)
	}
	return p, nil
}

// FindBinary locates restic for the CLI, benchmarks and tests (never a
// Job's step: JobBinary): $STOW_RESTIC, then PATH, then the tools cache
// that hack/tools.sh fills ($HOME/.cache/stow/bin).
func FindBinary() (string, error) {
	if p := os.Getenv("STOW_RESTIC"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("STOW_RESTIC=%s is not an executable file", p)
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "stow", "bin", "restic")
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("restic not found: set STOW_RESTIC, put restic on PATH, or run hack/tools.sh")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
