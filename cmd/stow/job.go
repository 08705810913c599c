package main

import (
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
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/metrics"
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
	lockGrace                               time.Duration
	backendRetryLimit                       time.Duration
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
	fs.DurationVar(&j.lockGrace, "lock-grace", 10*time.Second, "spare restic locks of this pod younger than this when removing stale locks")
	fs.DurationVar(&j.backendRetryLimit, "backend-retry-limit", 2*time.Minute, "fail once restic has retried backend requests without success for this long (0: restic's own 15 minutes)")
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
	bin, err := restic.FindBinary()
	if err != nil {
		return nil, made, err
	}
	r := &restic.Restic{Binary: bin, Location: loc, TempDir: tmp, Priority: prio, Logf: logger.Printf, BackendRetryLimit: j.backendRetryLimit}
	if j.enableCache {
		r.CacheDir = filepath.Join(j.scratchDir, "restic-cache")
	}
	return r, made, nil
}

func (j *jobFlags) metricLabels(host string) metrics.JobLabels {
	ns := j.targetNamespace
	if ns == "" {
		ns = j.namespace
	}
	return metrics.JobLabels{
		InvokerKind: j.invokerKind, InvokerName: j.invokerName, Namespace: j.namespace,
		Repository: j.repository, TargetKind: j.targetKind, TargetName: j.targetName,
		Host: host, Backend: j.backend.Provider, Bucket: j.backend.Bucket, Prefix: j.backend.Prefix,
	}
}

// outputPath is where a step leaves its result for update-status.
func (j *jobFlags) outputPath() string { return filepath.Join(j.outputDir, v1beta1.OutputFileName) }

// finish records res for the operator (termination log) and, when
// toOutput is set, for the next step (output.json); it returns the step's
// error so that the process exits non-zero with its one-line cause.
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
