package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/bench/internal/results"
	"github.com/stowhq/stow/pkg/names"
)

// nobody is the uid and gid Stow's Jobs run as by default.
const nobody = 65534

// sessionEnv is one namespace set up as the demo is: a data PVC, a
// Repository on a second PVC (local backend), a BackupConfiguration with
// Stow's default pod settings. The harness reaches both volumes through
// their directories on this host.
type sessionEnv struct {
	ns                string
	dataDir, repoDir  string // host directories of the data and repository PVCs
	stowRepo          string // the Repository's directory (its subPath of repoDir)
	scratchDir        string // host directory bare restic restores into
	bareCache         string // bare restic's cache, kept between its runs
	backups, restores int    // sessions created so far (names)
	version           int    // of the file set's last change
}

// keepLast is the configuration's retention (the demo's).
const keepLast = 5

const (
	dataClaim    = "data"
	envRepo      = "repo"
	envConfig    = "bc"
	envRepoMount = "/stow-repo"
)

// newSessionEnv creates the namespace's objects and waits until the
// configuration is Ready and the volumes are bound.
func (h *harness) newSessionEnv(ctx context.Context, ns string) (*sessionEnv, error) {
	if _, err := h.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName},
		StringData: map[string]string{"RESTIC_PASSWORD": benchPasswd}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	e := &sessionEnv{ns: ns}
	for _, v := range []struct {
		name string
		dir  *string
	}{{dataClaim, &e.dataDir}, {repoClaim, &e.repoDir}} {
		if err := h.sizedPVC(ctx, ns, v.name, "50Gi"); err != nil {
			return nil, err
		}
		dir, err := h.hostDir(ctx, ns, v.name)
		if err != nil {
			return nil, err
		}
		*v.dir = dir
	}
	// The Repository's subPath, made here so the Jobs (nobody) can write
	// it: the kubelet would make it root's.
	e.stowRepo = filepath.Join(e.repoDir, "stow")
	if err := os.Mkdir(e.stowRepo, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(e.stowRepo, nobody, nobody); err != nil {
		return nil, err
	}
	e.scratchDir, e.bareCache = filepath.Join(e.repoDir, "bare-restore"), filepath.Join(e.repoDir, "bare-cache")
	if _, err := h.stow.StowV1beta1().Repositories(ns).Create(ctx, &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: envRepo},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: secretName, Local: &v1beta1.LocalSpec{
			MountPath: envRepoMount, SubPath: "stow",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: repoClaim}},
		}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	// The demo's configuration (examples/demo/backup.yaml), triggered by
	// the harness instead of its schedule.
	if _, err := h.stow.StowV1beta1().BackupConfigurations(ns).Create(ctx, &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: envConfig},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule: neverSoonCron, Paused: true,
			Repository:      v1beta1.ObjectRef{Name: envRepo},
			Target:          &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: dataClaim}},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep-last-5", KeepLast: keepLast, Prune: true},
		},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	err := waitUntil(ctx, 2*time.Minute, "the BackupConfiguration to be Ready", func() bool {
		n, _ := h.obs.count(h.obs.bcReady, key(ns, envConfig))
		return n == 1
	})
	return e, err
}

func (h *harness) sizedPVC(ctx context.Context, ns, name, size string) error {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if h.cfg.storageClass != "" {
		claim.Spec.StorageClassName = &h.cfg.storageClass
	}
	_, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
	return err
}

// hostDir waits for PVC ns/name to be bound and returns its volume's
// directory on this host (the local cluster's volumes are hostPath).
func (h *harness) hostDir(ctx context.Context, ns, name string) (string, error) {
	var pv string
	err := waitUntil(ctx, 2*time.Minute, "PVC "+name+" to be bound", func() bool {
		c, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && c.Status.Phase == corev1.ClaimBound {
			pv = c.Spec.VolumeName
		}
		if pv == "" {
			time.Sleep(200 * time.Millisecond) // polling pace of a Get, not a synchronization
		}
		return pv != ""
	})
	if err != nil {
		return "", err
	}
	v, err := h.kube.CoreV1().PersistentVolumes().Get(ctx, pv, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if v.Spec.HostPath == nil {
		return "", fmt.Errorf("PV %s of PVC %s is not a hostPath volume: the overhead and growth parts need the volumes on this host (the local cluster)", pv, name)
	}
	if _, err := os.Stat(v.Spec.HostPath.Path); err != nil {
		return "", fmt.Errorf("PV %s of PVC %s: %v (the overhead and growth parts run on the cluster's host)", pv, name, err)
	}
	return v.Spec.HostPath.Path, nil
}

// timing is one session: created -> terminal, and the Job's step.
type timing struct {
	total, step time.Duration
	ok          bool // Succeeded
	stages      []span
}

type span struct {
	name string
	d    time.Duration
}

// backup runs one BackupSession and times it.
func (h *harness) backup(ctx context.Context, e *sessionEnv) (timing, error) {
	e.backups++
	name := fmt.Sprintf("b%03d", e.backups)
	k := key(e.ns, name)
	start := time.Now()
	if err := h.session(ctx, e.ns, name, envConfig); err != nil {
		return timing{}, err
	}
	if err := waitUntil(ctx, 10*time.Minute, "session "+name, func() bool { _, _, ok := h.obs.sessionDone(k); return ok }); err != nil {
		return timing{}, err
	}
	phase, reason, _ := h.obs.sessionDone(k)
	end, _ := h.obs.lookup(h.obs.sessionEnd)(k)
	step, _ := h.obs.stepOf(k)
	if phase != v1beta1.BackupSessionSucceeded {
		logf("backup session %s ended %s: %s", name, phase, reason)
	}
	return timing{total: end.Sub(start), step: step, ok: phase == v1beta1.BackupSessionSucceeded,
		stages: h.stages(start, key(e.ns, names.BackupJob(name)), end)}, nil
}

// restore runs one RestoreSession of the data PVC (from its latest
// snapshot) and times it.
func (h *harness) restore(ctx context.Context, e *sessionEnv) (timing, error) {
	e.restores++
	name := fmt.Sprintf("r%03d", e.restores)
	k := key(e.ns, name)
	start := time.Now()
	if _, err := h.stow.StowV1beta1().RestoreSessions(e.ns).Create(ctx, &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.RestoreSessionSpec{Repository: v1beta1.ObjectRef{Name: envRepo},
			Target: &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: dataClaim}}},
	}, metav1.CreateOptions{}); err != nil {
		return timing{}, err
	}
	if err := waitUntil(ctx, 10*time.Minute, "restore "+name, func() bool { _, _, _, ok := h.obs.restoreDone(k); return ok }); err != nil {
		return timing{}, err
	}
	phase, end, step, _ := h.obs.restoreDone(k)
	if phase != v1beta1.RestoreSucceeded {
		logf("restore session %s ended %s", name, phase)
	}
	return timing{total: end.Sub(start), step: step, ok: phase == v1beta1.RestoreSucceeded,
		stages: h.stages(start, key(e.ns, names.RestoreJob(name, 0)), end)}, nil
}

// stages splits a session from start to end at what the harness saw of
// its Job and pod, in the order they happen; a moment not seen is left out
// (its span merges into the next).
func (h *harness) stages(start time.Time, job string, end time.Time) []span {
	type point struct {
		name string
		t    time.Time
	}
	pts := []point{{"created", start}}
	if t, ok := h.obs.lookup(h.obs.jobAdded)(job); ok {
		pts = append(pts, point{"Job", t})
	}
	ev, steps := h.obs.podTimeline(job)
	add := func(what, name string) {
		if t, ok := ev[what]; ok {
			pts = append(pts, point{name, t})
		}
	}
	add(podEventCreated, "pod")
	add(podEventScheduled, "scheduled")
	for _, c := range steps {
		add(podStarted(c), c+" started")
		add(podExited(c), c+" exited")
	}
	add(podEventDone, "pod done")
	// The operator may end the session before the pod's phase says so
	// (executor.Observe): moments after the end are not part of it.
	pts = slices.DeleteFunc(pts, func(p point) bool { return p.t.After(end) })
	pts = append(pts, point{"session done", end})
	var out []span
	for i := 1; i < len(pts); i++ {
		out = append(out, span{pts[i-1].name + " -> " + pts[i].name, pts[i].t.Sub(pts[i-1].t)})
	}
	return out
}

// addStages appends one session's spans to the per-span series, keeping
// the order in which spans first appear.
func addStages(into []results.Stage, spans []span) []results.Stage {
	for _, s := range spans {
		i := slices.IndexFunc(into, func(st results.Stage) bool { return st.Name == s.name })
		if i < 0 {
			into = append(into, results.Stage{Name: s.name})
			i = len(into) - 1
		}
		into[i].S = append(into[i].S, s.d.Seconds())
	}
	return into
}

func (h *harness) bare(e *sessionEnv, dir string) *bareRestic {
	return &bareRestic{bin: h.cfg.restic, repo: dir, cache: e.bareCache}
}

// firstBackups runs untimed sessions until the configuration keeps as many
// snapshots as its retention allows, so that every timed session's forget
// removes one, as it does from then on. The first creates the repository and
// takes the full backup; it starts a maintenance run (check and size
// refresh), which is waited for so that it does not run under a timed
// session.
func (h *harness) firstBackups(ctx context.Context, e *sessionEnv, set *fileSet) error {
	for i := range keepLast {
		if i > 0 {
			e.version++
			if err := set.change(e.version); err != nil {
				return err
			}
		}
		t, err := h.backup(ctx, e)
		if err != nil {
			return err
		}
		if !t.ok {
			return errors.New("an untimed first backup session did not succeed")
		}
	}
	return waitUntil(ctx, 5*time.Minute, "the repository's first maintenance (check, refresh)", func() bool {
		r, err := h.stow.StowV1beta1().Repositories(e.ns).Get(ctx, envRepo, metav1.GetOptions{})
		if err != nil {
			return false // the API's answer next time
		}
		done := true
		for _, task := range []string{v1beta1.MaintenanceCheck, v1beta1.MaintenanceRefresh} {
			run := r.Status.Maintenance.Run(task)
			done = done && run != nil && run.LastTime != nil
		}
		if !done {
			time.Sleep(500 * time.Millisecond) // polling pace of a Get, not a synchronization
		}
		return done
	})
}

// sessionOverheadVsRestic is part overhead: backup sessions after a 1%
// change and restore sessions into the emptied volume, each next to bare
// restic doing the same on the same files, in alternating order.
func (h *harness) sessionOverheadVsRestic(ctx context.Context) error {
	ns, cleanup, err := h.namespace(ctx, "overhead")
	if err != nil {
		return err
	}
	defer cleanup()
	e, err := h.newSessionEnv(ctx, ns)
	if err != nil {
		return err
	}
	set := newFileSet(e.dataDir, h.cfg.dataFiles, h.cfg.dataBytes)
	logf("overhead: writing %d files, %.0f MiB into %s", set.files(), float64(set.bytes())/(1<<20), e.dataDir)
	if err := set.write(); err != nil {
		return err
	}
	bare := h.bare(e, filepath.Join(e.repoDir, "bare"))
	if err := bare.init(ctx); err != nil {
		return err
	}
	if _, _, err := bare.backup(ctx, e.dataDir, "bare"); err != nil {
		return err
	}
	if err := h.firstBackups(ctx, e, set); err != nil {
		return err
	}
	// Bare restic's repository as full: its forget removes one from now on.
	for range keepLast - 1 {
		if _, _, err := bare.backup(ctx, e.dataDir, "bare"); err != nil {
			return err
		}
	}
	bk := results.SessionOverhead{Op: "backup, 1% changed", Files: set.files(), Bytes: set.bytes()}
	var lastID string
	for i := 1; i <= h.cfg.overheadRuns; i++ {
		e.version++
		if err := set.change(e.version); err != nil {
			return err
		}
		var t timing
		stow := func() (err error) { t, err = h.backup(ctx, e); return err }
		var d, f time.Duration
		restic := func() (err error) {
			if d, lastID, err = bare.backup(ctx, e.dataDir, "bare"); err == nil {
				f, err = bare.forget(ctx, "bare", keepLast)
			}
			return err
		}
		if err := alternate(i, stow, restic); err != nil {
			return err
		}
		record(&bk, t, d)
		bk.ResticForgetS = append(bk.ResticForgetS, f.Seconds())
		logf("overhead: backup %d: session %.2fs (step %.2fs), restic %.2fs, then its forget %.2fs", i, t.total.Seconds(), t.step.Seconds(), d.Seconds(), f.Seconds())
	}
	rs := results.SessionOverhead{Op: "restore", Files: set.files(), Bytes: set.bytes()}
	for i := 1; i <= h.cfg.overheadRuns; i++ {
		if err := errors.Join(emptyDir(e.dataDir), os.RemoveAll(e.scratchDir), os.Mkdir(e.scratchDir, 0o755)); err != nil {
			return err
		}
		var t timing
		stow := func() (err error) {
			if t, err = h.restore(ctx, e); err == nil && t.ok {
				err = sameTally(e.dataDir, set)
			}
			return err
		}
		var d time.Duration
		restic := func() (err error) {
			if d, err = bare.restore(ctx, lastID, e.dataDir, e.scratchDir); err == nil {
				err = sameTally(e.scratchDir, set)
			}
			return err
		}
		if err := alternateAfter(i, h.settleForRestore(e.stowRepo, bare.repo, bare.cache), stow, restic); err != nil {
			return err
		}
		record(&rs, t, d)
		logf("overhead: restore %d: session %.2fs (step %.2fs), restic %.2fs", i, t.total.Seconds(), t.step.Seconds(), d.Seconds())
	}
	h.cp.Overhead = []results.SessionOverhead{bk, rs}
	for _, o := range h.cp.Overhead {
		logf("overhead: %s: session p50 %.2fs, restic p50 %.2fs, overhead %.2fs", o.Op,
			results.Summarize(o.SessionS).Median, results.Summarize(o.ResticS).Median, o.Overhead())
	}
	return nil
}

// record adds one session and its bare restic counterpart; a session that
// did not succeed is counted, not timed.
func record(o *results.SessionOverhead, t timing, restic time.Duration) {
	o.ResticS = append(o.ResticS, restic.Seconds())
	if !t.ok {
		o.Failed++
		return
	}
	o.SessionS = append(o.SessionS, t.total.Seconds())
	o.StepS = append(o.StepS, t.step.Seconds())
	o.Stages = addStages(o.Stages, t.stages)
}

// alternate runs a then b on odd runs, b then a on even ones: neither
// always goes first on a cache the other warmed. Each starts with the
// dirty pages written back (the set's change, the emptied volume, the
// other's restore), so neither pays for what came before it.
func alternate(run int, a, b func() error) error {
	return alternateAfter(run, func() error { syscall.Sync(); return nil }, a, b)
}

// alternateAfter is alternate with settle run before each of a and b.
func alternateAfter(run int, settle, a, b func() error) error {
	if run%2 == 0 {
		a, b = b, a
	}
	for _, f := range []func() error{a, b} {
		if err := settle(); err != nil {
			return err
		}
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// settleForRestore writes back dirty pages, drops the page cache (with
// BENCH_DROP_CACHES, as bench/datapath does) and reads the repositories
// back in: each restore starts warm on what it reads and cold on what it
// writes. Without it, the restores after the first ran 2-3x slower, for
// both tools alike, than the first (docs/performance.md).
func (h *harness) settleForRestore(repos ...string) func() error {
	return func() error {
		syscall.Sync()
		if !h.cfg.dropCaches {
			return nil
		}
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
			return fmt.Errorf("dropping the page cache (BENCH_DROP_CACHES=0 skips it): %v", err)
		}
		for _, r := range repos {
			if err := readAll(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// sameTally fails unless dir holds exactly the set's files and bytes.
func sameTally(dir string, set *fileSet) error {
	files, bytes, err := tally(dir)
	if err != nil {
		return err
	}
	if files != set.files() || bytes != set.bytes() {
		return fmt.Errorf("%s holds %d files, %d bytes after the restore; want %d, %d", dir, files, bytes, set.files(), set.bytes())
	}
	return nil
}
