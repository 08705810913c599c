package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/lockholder"
	"github.com/stowhq/stow/pkg/restic"
)

// jobFlags are the flags every in-Job step gets from the built-in Functions
// (pkg/builtin: invokerArgs and repositoryArgs), plus a few runner settings.
type jobFlags struct {
	namespace, invokerKind, invokerName     string
	targetKind, targetName, targetNamespace string
	repository, hostname, outputDir         string
	backend                                 restic.BackendFlags
	enableCache                             bool
	scratchDir, terminationLog              string
	lockWait                                time.Duration
	backendRetryLimit                       time.Duration

	// contract is what the operator fixed in the environment (pkg/jobenv);
	// when present it wins over the flags above, which Task parameters
	// can change.
	contract    jobenv.Contract
	hasContract bool
	start       time.Time
}

func (j *jobFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&j.namespace, "namespace", "default", "namespace of the invoker")
	fs.StringVar(&j.invokerKind, "invoker-kind", "", "invoker kind (BackupConfiguration or RestoreSession)")
	fs.StringVar(&j.invokerName, "invoker-name", "", "invoker name")
	fs.StringVar(&j.targetKind, "target-kind", "", "target kind (PersistentVolumeClaim)")
	fs.StringVar(&j.targetName, "target-name", "", "target name")
	fs.StringVar(&j.targetNamespace, "target-namespace", "", "target namespace")
	fs.StringVar(&j.repository, "repository", "", "Repository object name (for metrics)")
	fs.StringVar(&j.hostname, "hostname", "", "restic host of this target (default "+v1beta1.DefaultHost+")")
	fs.StringVar(&j.outputDir, "output-dir", v1beta1.OutputDir, "directory where a step leaves "+v1beta1.OutputFileName+" for update-status")

	fs.StringVar(&j.backend.Provider, "provider", "", "repository provider: local, s3, gcs, azure, swift, b2, rest")
	fs.StringVar(&j.backend.Bucket, "bucket", "", "bucket or container; for local, the repository mount path; for rest, the URL host")
	fs.StringVar(&j.backend.Endpoint, "endpoint", "", "S3 endpoint or REST server URL")
	fs.StringVar(&j.backend.Region, "region", "", "S3 region")
	fs.StringVar(&j.backend.Prefix, "path", "", "prefix inside the bucket")
	fs.BoolVar(&j.backend.InsecureTLS, "insecure-tls", false, "skip TLS certificate verification of the backend")
	fs.Int64Var(&j.backend.MaxConnections, "max-connections", 0, "restic backend connections (gcs, azure, b2); 0 keeps restic's default")
	fs.BoolVar(&j.enableCache, "enable-cache", true, "keep restic's cache under --scratch-dir (false runs restic with --no-cache)")
	fs.StringVar(&j.scratchDir, "scratch-dir", v1beta1.TmpDirMountPath, "scratch directory for the cache, temp files and credential files")
	fs.StringVar(&j.terminationLog, "termination-log", jobresult.TerminationLogPath, "file the step's result is written to (the container's termination message)")
	fs.DurationVar(&j.lockWait, "lock-wait", 30*time.Minute, "how long to wait for a restic lock held by someone else before failing with the holder's name (the operator sets a deadline in $"+jobenv.LockDeadline+" instead)")
	fs.DurationVar(&j.backendRetryLimit, "backend-retry-limit", 2*time.Minute, "fail once restic has retried backend requests without success for this long (0: restic's own 15 minutes)")
}

// load reads the operator's contract from the environment; call it first.
func (j *jobFlags) load() error {
	j.start = time.Now()
	c, ok, err := jobenv.Read(os.Getenv)
	if err != nil {
		return err
	}
	j.contract, j.hasContract = c, ok
	return nil
}

// identity is the source identity snapshots are tagged with: the
// operator's, else the flags' when they name one completely.
func (j *jobFlags) identity() (identity.Identity, bool) {
	if j.hasContract {
		return j.contract.Identity, j.contract.Identity.Validate() == nil
	}
	ns := j.targetNamespace
	if ns == "" {
		ns = j.namespace
	}
	id := identity.Identity{Namespace: ns, InvokerKind: j.invokerKind, InvokerName: j.invokerName,
		TargetKind: j.targetKind, TargetName: j.targetName}
	return id, id.Validate() == nil
}

// resolvedSnapshots are the snapshots the operator chose for a restore
// without rules, one entry per path, shaped as restic lists them.
func (j *jobFlags) resolvedSnapshots() []pathSnapshot {
	if !j.hasContract {
		return nil
	}
	var out []pathSnapshot
	for _, r := range j.contract.Resolved {
		snap := restic.Snapshot{ID: r.ID, ShortID: short(r.ID), Time: r.Time, Paths: r.Paths}
		if r.MountPath != "" {
			snap.Tags = []string{restic.MountTagKey + "=" + r.MountPath}
		}
		for _, p := range r.Paths {
			s := snap
			s.Paths = []string{p}
			out = append(out, pathSnapshot{Path: p, Snapshot: s})
		}
	}
	return out
}

// asOf is the RestoreSession's restoreAsOf (zero: the latest snapshots).
func (j *jobFlags) asOf() time.Time {
	if !j.hasContract {
		return time.Time{}
	}
	return j.contract.AsOf
}

// extraMounts are the mount paths of a restore's further new PVCs, restored
// in the same run as the one at --mount-path.
func (j *jobFlags) extraMounts() []string {
	if !j.hasContract {
		return nil
	}
	return j.contract.ExtraMounts
}

// lockPolicy decides which restic locks this step may remove: restic's own
// stale ones, and those of this cluster's Stow pods the operator says no
// longer run.
func (j *jobFlags) lockPolicy() restic.LockPolicy {
	self, _ := os.Hostname()
	p := restic.LockPolicy{Self: self}
	if j.hasContract && j.contract.LockHostPrefix != "" && j.contract.OperatorURL != "" {
		p.HostPrefix = j.contract.LockHostPrefix
		url := j.contract.OperatorURL
		p.HolderRuns = func(ctx context.Context, host string) (bool, error) {
			a, err := lockholder.Ask(ctx, nil, url, host)
			if err != nil {
				logger.Printf("lock holder %s: %v; keeping its lock", host, err)
				return true, err
			}
			logger.Printf("lock holder %s: %s", host, a.Reason)
			return a.Runs, nil
		}
	}
	return p
}

// lockDeadline is when waiting for someone else's lock ends.
func (j *jobFlags) lockDeadline() time.Time {
	if j.hasContract && !j.contract.LockDeadline.IsZero() {
		return j.contract.LockDeadline
	}
	return j.start.Add(j.lockWait)
}

// host is the restic host of this target: --hostname or host-0.
func (j *jobFlags) host() string {
	if j.hostname != "" {
		return j.hostname
	}
	return v1beta1.DefaultHost
}

// envSecrets is the storage Secret as the Job sees it: envFrom puts every key
// into the environment.
func envSecrets() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// logger writes to stderr; the termination message is the structured report.
var logger = log.New(os.Stderr, "", log.LstdFlags)

// openRepository builds the restic runner from the flags and environment.
// close removes the credential files and temp dir it made.
func (j *jobFlags) openRepository() (r *restic.Restic, close func(), err error) {
	var made []string
	close = func() {
		for _, d := range made {
			_ = os.RemoveAll(d)
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	r, made, err = j.newRestic()
	return r, close, err
}

// repositoryApart refuses a target path that overlaps a local repository's
// mount (one inside the other): a backup would save the repository instead
// of the volume, a restore would write into the repository.
func (j *jobFlags) repositoryApart(target string) error {
	b, err := j.backend.Backend()
	if err != nil || b.Local == nil {
		return nil // a broken backend is reported when the repository opens
	}
	repo, t := filepath.Clean(b.Local.MountPath), filepath.Clean(target)
	if within(t, repo) || within(repo, t) {
		return fmt.Errorf("the target volume at %s and the local repository mounted at %s overlap: mount them apart (target volumeMounts or the Repository's mountPath)", t, repo)
	}
	return nil
}

// within tells whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func (j *jobFlags) newRestic() (*restic.Restic, []string, error) {
	var made []string
	b, err := j.backend.Backend()
	if err != nil {
		return nil, made, err
	}
	if err := os.MkdirAll(j.scratchDir, 0o755); err != nil {
		return nil, made, fmt.Errorf("scratch dir: %v", err)
	}
	secretDir, err := os.MkdirTemp(j.scratchDir, "credentials-")
	if err != nil {
		return nil, made, fmt.Errorf("scratch dir: %v", err)
	}
	made = append(made, secretDir)
	loc, err := restic.NewLocation(b, envSecrets(), secretDir)
	if err != nil {
		return nil, made, err
	}
	tmp, err := os.MkdirTemp(j.scratchDir, "tmp-")
	if err != nil {
		return nil, made, fmt.Errorf("scratch dir: %v", err)
	}
	made = append(made, tmp)
	prio, err := restic.PriorityFromEnv(os.Getenv)
	if err != nil {
		return nil, made, err
	}
	// In a Job (the operator's contract is set) restic is the one next to
	// the runner; the environment only names it for runs outside Jobs.
	find := restic.FindBinary
	if j.hasContract {
		find = restic.JobBinary
	}
	bin, err := find()
	if err != nil {
		return nil, made, err
	}
	r := &restic.Restic{Binary: bin, Location: loc, TempDir: tmp, Priority: prio, Logf: logger.Printf, BackendRetryLimit: j.backendRetryLimit}
	if j.enableCache {
		r.CacheDir = filepath.Join(j.scratchDir, "restic-cache")
	}
	return r, made, nil
}

// registerIgnoredMetricsFlags accepts the metrics flags of Stash's Functions
// (and Stow's before it): Jobs no longer push, the operator pushes every
// metric from the result a Job reports, under labels it chooses, so no Task
// parameter or Function can push for another invoker.
func registerIgnoredMetricsFlags(fs *pflag.FlagSet) {
	fs.Bool("metrics-enabled", true, "accepted for compatibility; the operator pushes the metrics from this step's result")
	fs.String("metrics-pushgateway-url", "", "accepted for compatibility; the operator pushes the metrics from this step's result")
}

// outputPath is where a step leaves its result for update-status.
func (j *jobFlags) outputPath() string { return filepath.Join(j.outputDir, v1beta1.OutputFileName) }

// finish records res for the operator (termination log) and, when
// toOutput is set, for the next step (output.json); it returns the step's
// error so that the process exits non-zero with its one-line cause.
// failStep ends a backup or restore step with err: res says it, with the
// time the step took, in output.json and the termination log.
func (j *jobFlags) failStep(res *jobresult.Result, err error) error {
	res.Error = oneLine(err.Error())
	res.Duration = j.elapsed()
	return j.finish(*res, true)
}

// elapsed is how long the step has run, as its result reports it.
func (j *jobFlags) elapsed() string {
	return time.Since(j.start).Round(time.Millisecond).String()
}

func (j *jobFlags) finish(res jobresult.Result, toOutput bool) error {
	var errs []error
	if toOutput {
		if err := writeOutput(j.outputPath(), res); err != nil {
			errs = append(errs, err)
		}
	}
	if err := jobresult.WriteTerminationMessage(j.terminationLog, res); err != nil {
		errs = append(errs, fmt.Errorf("writing termination message: %v", err))
	}
	if res.Error != "" {
		errs = append([]error{errors.New(res.Error)}, errs...)
	}
	return errors.Join(errs...)
}

func writeOutput(path string, res jobresult.Result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %v", path, err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	// Written then renamed: update-status must never read half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %v", path, err)
	}
	return nil
}

func readOutput(path string) (jobresult.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return jobresult.Result{}, fmt.Errorf("no result from the previous step at %s", path)
		}
		return jobresult.Result{}, err
	}
	if r, ok := jobresult.FromStashOutput(b); ok {
		return r, nil
	}
	var r jobresult.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return jobresult.Result{}, fmt.Errorf("result at %s is not valid: %v", path, err)
	}
	return r, nil
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func boolPtr(b bool) *bool { return &b }
