// Command controlplane measures Stow's operator against a real apiserver
// ($KUBECONFIG, a cluster with Stow deployed, e.g. the local cluster):
//
//   - session overhead: BENCH_CP_SESSIONS (50) BackupSessions run one after
//     another; BackupSession created -> Job created, and Job finished ->
//     session terminal, p50/p99;
//   - scale: BENCH_CP_CONFIGS (5000) BackupConfigurations -> as many CronJobs,
//     time to converge and the operator's RSS (sampled from /proc);
//   - BENCH_CP_CONCURRENT (200) BackupSessions at once, each with its own
//     Repository and PVC (Stow serializes per Repository and per target);
//   - restart: after the first scale run converged, the operator's pod is
//     deleted; how many of the configurations and the objects Stow made for
//     them the new operator rewrites (goal 0), and how long until it has
//     reconciled them all;
//   - overhead: BackupSessions after a 1% change of a fixed-seed set
//     (BENCH_CP_DATA_FILES 10000 files, BENCH_CP_DATA_MIB 276 MiB) and
//     RestoreSessions into the emptied volume, BENCH_CP_OVERHEAD_RUNS (5)
//     each, created -> Succeeded, next to bare restic (STOW_RESTIC) doing
//     the same on the cluster's host (overhead.go; local cluster only: the
//     harness reads and writes the volumes' host directories). Before each
//     restore the page cache is dropped (BENCH_DROP_CACHES=0 skips it) and
//     the repositories read back in;
//   - growth: the same backup session, BENCH_CP_GROWTH_RUNS (3) times at
//     each repository size of BENCH_CP_GROWTH_GIB (0.2,2,8), grown by
//     other hosts' snapshots (growth.go);
//   - clutter: the operator's RSS settled after a restart, without and with
//     BENCH_CP_CLUTTER (10000) unrelated Secrets of 100 KiB, PVCs and
//     CronJobs in the cluster (clutter.go), and its peak while they are made.
//
// Scale and concurrency are repeated BENCH_CP_RUNS (3) times, each in a
// fresh namespace; the session overhead is already 50 samples.
//
// It creates namespaces stow-bench-*, deletes them afterwards (BENCH_CP_KEEP=1
// keeps them), and refuses to run unless BENCH_CLUSTER=1. Other knobs:
// BENCH_CP_PARTS (sessions,overhead,growth,scale,restart,clutter,concurrent),
// BENCH_STORAGE_CLASS, BENCH_OPERATOR_PID, BENCH_OUT (bench/results.json),
// BENCH_LABEL, BENCH_CP_KEEP_CLUTTER=1 (keep the clutter for the next run).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/bench/internal/results"
	stow "github.com/stowhq/stow/client/clientset/versioned"
	stowinformers "github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/names"
)

type config struct {
	kubeconfig, storageClass, out, label         string
	sessions, configs, concurrent, runs, clutter int
	parts                                        []string
	operatorPID                                  int
	keep, keepClutter                            bool
	// Parts overhead and growth.
	restic                   string // bare restic on this host
	dataFiles                int
	dataBytes                int64
	overheadRuns, growthRuns int
	growthBytes              []int64
	dropCaches               bool // BENCH_DROP_CACHES (1): before each timed restore
}

// allParts are the parts in the order they run.
var allParts = []string{"sessions", "overhead", "growth", "scale", "restart", "clutter", "concurrent"}

// loadConfig reads the environment; without BENCH_CLUSTER=1 it refuses, so
// `go run ./bench/...` or a stray `make bench` never loads a cluster.
func loadConfig(getenv func(string) string) (*config, error) {
	if getenv("BENCH_CLUSTER") != "1" {
		return nil, errors.New("refusing to run: the control-plane benchmark creates thousands of objects on $KUBECONFIG's cluster; set BENCH_CLUSTER=1 to allow it")
	}
	get := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	c := &config{
		kubeconfig: getenv("KUBECONFIG"), storageClass: getenv("BENCH_STORAGE_CLASS"),
		out: get("BENCH_OUT", "bench/results.json"), label: getenv("BENCH_LABEL"),
		parts: strings.Split(get("BENCH_CP_PARTS", strings.Join(allParts, ",")), ","),
		keep:  getenv("BENCH_CP_KEEP") == "1", keepClutter: getenv("BENCH_CP_KEEP_CLUTTER") == "1",
	}
	if c.kubeconfig == "" {
		return nil, errors.New("KUBECONFIG is not set")
	}
	for _, p := range c.parts {
		if !slices.Contains(allParts, p) {
			return nil, fmt.Errorf("BENCH_CP_PARTS: unknown part %q (%s)", p, strings.Join(allParts, ", "))
		}
	}
	for _, n := range []struct {
		env string
		def int
		dst *int
	}{{"BENCH_CP_SESSIONS", 50, &c.sessions}, {"BENCH_CP_CONFIGS", 5000, &c.configs}, {"BENCH_CP_CONCURRENT", 200, &c.concurrent}, {"BENCH_CP_RUNS", 3, &c.runs}, {"BENCH_OPERATOR_PID", 0, &c.operatorPID}, {"BENCH_CP_CLUTTER", 10000, &c.clutter}} {
		v, err := strconv.Atoi(get(n.env, strconv.Itoa(n.def)))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s=%q: want a number >= 0", n.env, getenv(n.env))
		}
		*n.dst = v
	}
	if c.runs < 1 {
		return nil, fmt.Errorf("BENCH_CP_RUNS=%d: want at least 1", c.runs)
	}
	if slices.Contains(c.parts, "overhead") || slices.Contains(c.parts, "growth") {
		if err := c.loadSessionData(getenv, get); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// loadSessionData reads the knobs of the overhead and growth parts.
func (c *config) loadSessionData(getenv func(string) string, get func(k, def string) string) error {
	c.restic = getenv("STOW_RESTIC")
	c.dropCaches = get("BENCH_DROP_CACHES", "1") != "0"
	if c.restic == "" {
		return errors.New("STOW_RESTIC is not set: the overhead and growth parts compare with bare restic (hack/bench.sh sets it)")
	}
	var mib int
	for _, n := range []struct {
		env string
		def int
		dst *int
	}{{"BENCH_CP_DATA_FILES", 10_000, &c.dataFiles}, {"BENCH_CP_DATA_MIB", 276, &mib}, {"BENCH_CP_OVERHEAD_RUNS", 5, &c.overheadRuns}, {"BENCH_CP_GROWTH_RUNS", 3, &c.growthRuns}} {
		v, err := strconv.Atoi(get(n.env, strconv.Itoa(n.def)))
		if err != nil || v < 1 {
			return fmt.Errorf("%s=%q: want a number >= 1", n.env, getenv(n.env))
		}
		*n.dst = v
	}
	c.dataBytes = int64(mib) << 20
	var last int64
	for _, f := range strings.Split(get("BENCH_CP_GROWTH_GIB", "0.2,2,8"), ",") {
		g, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		b := int64(g * (1 << 30))
		if err != nil || b <= last {
			return fmt.Errorf("BENCH_CP_GROWTH_GIB=%q: want increasing sizes in GiB, e.g. 0.2,2,8", getenv("BENCH_CP_GROWTH_GIB"))
		}
		c.growthBytes, last = append(c.growthBytes, b), b
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/controlplane:", err)
		os.Exit(2)
	}
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/controlplane:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

type harness struct {
	cfg  *config
	kube kubernetes.Interface
	stow stow.Interface
	obs  *observer
	cp   *results.ControlPlane
}

func run(ctx context.Context, c *config) error {
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return err
	}
	// The harness must not be the bottleneck it measures.
	rc.QPS, rc.Burst = 500, 1000
	h := &harness{cfg: c, kube: kubernetes.NewForConfigOrDie(rc), stow: stow.NewForConfigOrDie(rc), obs: newObserver(),
		cp: &results.ControlPlane{Started: time.Now(), Label: c.label, LoadStart: results.LoadAverage()}}
	if err := h.startInformers(ctx); err != nil {
		return err
	}
	f, err := results.Load(c.out)
	if err != nil {
		return err
	}
	f.Machine = results.DetectMachine()
	if f.Versions.Go == "" {
		f.Versions.Go = runtime.Version()
	}
	f.Versions.Stow = results.StowVersion()
	for _, p := range c.parts {
		var err error
		switch p {
		case "sessions":
			err = h.sessionOverhead(ctx)
		case "overhead":
			err = h.sessionOverheadVsRestic(ctx)
		case "growth":
			err = h.repositoryGrowth(ctx)
		case "scale":
			for r := 0; r < c.runs && err == nil; r++ {
				err = h.scale(ctx, r)
			}
		case "concurrent":
			for r := 0; r < c.runs && err == nil; r++ {
				err = h.concurrentSessions(ctx)
			}
		case "restart":
			if !slices.Contains(c.parts, "scale") {
				err = errors.New("the restart part runs inside the scale part: add scale to BENCH_CP_PARTS")
			}
		case "clutter":
			err = h.clutter(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
	}
	// The machine is shared: what else ran shows in the load average.
	h.cp.LoadEnd = results.LoadAverage()
	f.ControlPlane = mergeParts(f.ControlPlane, h.cp, c.parts)
	if err := f.Save(c.out); err != nil {
		return err
	}
	md := strings.TrimSuffix(c.out, ".json") + ".md"
	if err := os.WriteFile(md, []byte(f.Markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", c.out, md)
	return nil
}

// mergeParts keeps, from an earlier report, the parts this run did not
// measure (BENCH_CP_PARTS), so the parts can be run, and repeated, apart.
func mergeParts(old, cur *results.ControlPlane, parts []string) *results.ControlPlane {
	out := *cur
	if !slices.Equal(parts, allParts) {
		out.Notes = append(out.Notes, fmt.Sprintf("parts %s measured at %s (BENCH_CP_PARTS); load average at start %s, at end %s",
			strings.Join(parts, ", "), cur.Started.UTC().Format("15:04 UTC"), cur.LoadStart, cur.LoadEnd))
	}
	if old == nil {
		return &out
	}
	if !slices.Contains(parts, "sessions") {
		out.Sessions, out.CreatedToJobS, out.JobDoneToPhaseS, out.SessionsFailed = old.Sessions, old.CreatedToJobS, old.JobDoneToPhaseS, old.SessionsFailed
		out.SessionTotalS, out.SessionStepS = old.SessionTotalS, old.SessionStepS
	}
	if !slices.Contains(parts, "overhead") {
		out.Overhead = old.Overhead
	}
	if !slices.Contains(parts, "growth") {
		out.Growth = old.Growth
	}
	if !slices.Contains(parts, "scale") {
		out.Configs, out.ConvergeS, out.CronJobsSeen, out.ReadyS, out.ReadySeen = old.Configs, old.ConvergeS, old.CronJobsSeen, old.ReadyS, old.ReadySeen
		out.OperatorRSSMiB, out.OperatorIdleMiB = old.OperatorRSSMiB, old.OperatorIdleMiB
	}
	if !slices.Contains(parts, "concurrent") {
		out.Concurrent, out.ConcurrentJobsS, out.ConcurrentDoneS, out.ConcurrentFailed = old.Concurrent, old.ConcurrentJobsS, old.ConcurrentDoneS, old.ConcurrentFailed
	}
	if !slices.Contains(parts, "restart") {
		out.RestartConfigs, out.RestartObjects, out.RestartRewritten, out.RestartSettleS = old.RestartConfigs, old.RestartObjects, old.RestartRewritten, old.RestartSettleS
	}
	if !slices.Contains(parts, "clutter") {
		out.ClutterObjects, out.ClutterBaseMiB, out.ClutterMiB, out.ClutterPeakMiB = old.ClutterObjects, old.ClutterBaseMiB, old.ClutterMiB, old.ClutterPeakMiB
	}
	if !slices.Equal(parts, allParts) {
		for _, n := range old.Notes {
			if !slices.Contains(out.Notes, n) && !superseded(n, parts) {
				out.Notes = append(out.Notes, n)
			}
		}
	}
	return &out
}

// notePart is the part an earlier note speaks of, by its prefix.
var notePart = map[string]string{"scale:": "scale", "operator RSS not measured:": "scale", "session overhead:": "sessions"}

// superseded tells whether an earlier report's note is about parts this run
// measured again: its numbers are gone from the report, so the note goes too.
func superseded(note string, parts []string) bool {
	for prefix, part := range notePart {
		if strings.HasPrefix(note, prefix) {
			return slices.Contains(parts, part)
		}
	}
	list, ok := strings.CutPrefix(note, "parts ")
	if i := strings.Index(list, " measured at "); ok && i > 0 {
		for _, p := range strings.Split(list[:i], ", ") {
			if !slices.Contains(parts, p) {
				return false
			}
		}
		return true
	}
	return false
}

// startInformers watches Jobs, CronJobs and BackupSessions in every
// namespace (the harness's namespaces are created later).
func (h *harness) startInformers(ctx context.Context) error {
	kf := informers.NewSharedInformerFactory(h.kube, 0)
	sf := stowinformers.NewSharedInformerFactory(h.stow, 0)
	jobs, cjs := kf.Batch().V1().Jobs().Informer(), kf.Batch().V1().CronJobs().Informer()
	sessions, configs := sf.Stow().V1beta1().BackupSessions().Informer(), sf.Stow().V1beta1().BackupConfigurations().Informer()
	restores := sf.Stow().V1beta1().RestoreSessions().Informer()
	// Only Stow's pods: the harness must not cache every pod of the cluster.
	pods := informers.NewSharedInformerFactoryWithOptions(h.kube, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.LabelSelector = v1beta1.LabelManagedBy + "=" + v1beta1.ManagedByStow
	})).Core().V1().Pods().Informer()
	for _, r := range []struct {
		inf cache.SharedIndexInformer
		f   func(any)
	}{{jobs, h.obs.onJob}, {cjs, h.obs.onCronJob}, {sessions, h.obs.onSession}, {pods, h.obs.onPod}, {configs, h.obs.onConfig}, {restores, h.obs.onRestore}} {
		if _, err := r.inf.AddEventHandler(handler(r.f)); err != nil {
			return err
		}
	}
	kf.Start(ctx.Done())
	sf.Start(ctx.Done())
	go pods.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), jobs.HasSynced, cjs.HasSynced, sessions.HasSynced, pods.HasSynced, configs.HasSynced, restores.HasSynced) {
		return errors.New("informers did not sync")
	}
	return nil
}

// waitUntil polls cond (cheap: it reads the observer) until it holds.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-t.C:
		}
	}
	return nil
}

// parallel runs f(0..n-1) on w workers and returns the first error.
func parallel(n, w int, f func(i int) error) error {
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	next := make(chan int)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// namespace creates a fresh namespace and returns a function deleting it.
func (h *harness) namespace(ctx context.Context, part string) (string, func(), error) {
	name := "stow-bench-" + part + "-" + rand.String(5)
	if _, err := h.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return "", nil, err
	}
	return name, func() {
		if h.cfg.keep {
			logf("keeping namespace %s (BENCH_CP_KEEP=1)", name)
			return
		}
		// Wait until it is gone: tearing down a thousand configurations must
		// not load the operator while the next part measures it.
		bg := context.Background()
		if err := h.kube.CoreV1().Namespaces().Delete(bg, name, metav1.DeleteOptions{}); err != nil {
			logf("deleting namespace %s: %v", name, err)
			return
		}
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := h.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			logf("namespace %s not deleted: %v", name, err)
		}
	}, nil
}

const (
	secretName    = "bench-repo-secret"
	repoClaim     = "bench-repo"
	repoMount     = "/stow-repo"
	benchPasswd   = "bench-password"
	neverSoonCron = "0 0 1 1 *" // sessions are created by the harness, not the schedule
)

// base creates the Secret and the PVC that holds every Repository of ns.
func (h *harness) base(ctx context.Context, ns string) error {
	if _, err := h.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName},
		StringData: map[string]string{"RESTIC_PASSWORD": benchPasswd}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	return h.pvc(ctx, ns, repoClaim)
}

func (h *harness) pvc(ctx context.Context, ns, name string) error {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if h.cfg.storageClass != "" {
		claim.Spec.StorageClassName = &h.cfg.storageClass
	}
	_, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
	return err
}

// repository is a local-backend Repository in its own directory of the repo PVC.
func (h *harness) repository(ctx context.Context, ns, name string) error {
	_, err := h.stow.StowV1beta1().Repositories(ns).Create(ctx, &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: secretName, Local: &v1beta1.LocalSpec{
			MountPath: repoMount, SubPath: name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: repoClaim}},
		}}},
	}, metav1.CreateOptions{})
	return err
}

func (h *harness) backupConfig(ctx context.Context, ns, name, repo, claim string, paused bool) error {
	_, err := h.stow.StowV1beta1().BackupConfigurations(ns).Create(ctx, &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:        neverSoonCron,
			Paused:          paused,
			Repository:      v1beta1.ObjectRef{Name: repo},
			Target:          &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: claim}},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep-3", KeepLast: 3},
			// Each Repository is a subPath of one PVC; the kubelet creates
			// that directory, and whether a non-root Job may write it depends
			// on the node. Root removes the doubt and does not change what is
			// measured here (the operator's latency, not the Job's).
			RuntimeSettings: v1beta1.RuntimeSettings{Pod: &v1beta1.PodRuntimeSettings{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0)), RunAsGroup: ptr.To(int64(0))},
			}},
		},
	}, metav1.CreateOptions{})
	return err
}

func (h *harness) session(ctx context.Context, ns, name, bc string) error {
	_, err := h.stow.StowV1beta1().BackupSessions(ns).Create(ctx, &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{APIGroup: v1beta1.GroupName, Kind: v1beta1.KindBackupConfiguration, Name: bc}},
	}, metav1.CreateOptions{})
	return err
}

// sessionOverhead runs sessions one after another on one configuration.
func (h *harness) sessionOverhead(ctx context.Context) error {
	ns, cleanup, err := h.namespace(ctx, "sessions")
	if err != nil {
		return err
	}
	defer cleanup()
	if err := h.base(ctx, ns); err != nil {
		return err
	}
	if err := errors.Join(h.pvc(ctx, ns, "data"), h.repository(ctx, ns, "repo"), h.backupConfig(ctx, ns, "overhead", "repo", "data", true)); err != nil {
		return err
	}
	if err := waitUntil(ctx, 2*time.Minute, "the configuration's CronJob", func() bool {
		n, _ := h.obs.countCronJobs(key(ns, names.CronJob("overhead")))
		return n == 1
	}); err != nil {
		return err
	}
	// One untimed session first: it pulls nothing new but initializes the
	// repository and binds the PVCs, which the steady state does not do.
	runOne := func(name string) (time.Time, error) {
		start := time.Now()
		if err := h.session(ctx, ns, name, "overhead"); err != nil {
			return start, err
		}
		err := waitUntil(ctx, 10*time.Minute, "session "+name, func() bool { _, _, ok := h.obs.sessionDone(key(ns, name)); return ok })
		return start, err
	}
	if _, err := runOne("warmup"); err != nil {
		return err
	}
	if p, reason, _ := h.obs.sessionDone(key(ns, "warmup")); p != v1beta1.BackupSessionSucceeded {
		return fmt.Errorf("the warm-up session ended %s: %s", p, reason)
	}
	created := map[string]time.Time{}
	var keys []string
	for i := range h.cfg.sessions {
		name := fmt.Sprintf("s%03d", i)
		start, err := runOne(name)
		if err != nil {
			return err
		}
		created[name], keys = start, append(keys, name)
		if p, reason, _ := h.obs.sessionDone(key(ns, name)); p != v1beta1.BackupSessionSucceeded {
			h.cp.SessionsFailed++
			logf("session %s ended %s: %s", name, p, reason)
		}
	}
	h.cp.Sessions = len(keys)
	byJob := func(m map[string]time.Time) func(string) (time.Time, bool) {
		get := h.obs.lookup(m)
		return func(s string) (time.Time, bool) { return get(key(ns, names.BackupJob(s))) }
	}
	bySession := func(m map[string]time.Time) func(string) (time.Time, bool) {
		get := h.obs.lookup(m)
		return func(s string) (time.Time, bool) { return get(key(ns, s)) }
	}
	var miss1, miss2 int
	h.cp.CreatedToJobS, miss1 = latencies(keys, func(k string) (time.Time, bool) { t, ok := created[k]; return t, ok }, byJob(h.obs.jobAdded))
	h.cp.JobDoneToPhaseS, miss2 = latencies(keys, byJob(h.obs.podDone), bySession(h.obs.sessionEnd))
	// Overhead: the whole session minus its backup step, for the sessions
	// that reported a step.
	for _, k := range keys {
		end, ok1 := bySession(h.obs.sessionEnd)(k)
		step, ok2 := h.obs.stepOf(key(ns, k))
		if ok1 && ok2 {
			h.cp.SessionTotalS = append(h.cp.SessionTotalS, end.Sub(created[k]).Seconds())
			h.cp.SessionStepS = append(h.cp.SessionStepS, step.Seconds())
		}
	}
	if miss1+miss2 > 0 {
		h.cp.Notes = append(h.cp.Notes, fmt.Sprintf("session overhead: %d sessions had no observed Job, %d no observed end of the Job's pod", miss1, miss2))
	}
	logf("session overhead: created->Job p50 %.3fs p99 %.3fs; Job done->terminal p50 %.3fs p99 %.3fs",
		results.Percentile(h.cp.CreatedToJobS, 50), results.Percentile(h.cp.CreatedToJobS, 99),
		results.Percentile(h.cp.JobDoneToPhaseS, 50), results.Percentile(h.cp.JobDoneToPhaseS, 99))
	return nil
}

// rssSampler samples the operator's RSS until stop is called and returns the
// peak; the RSS at the start of the first run is recorded as idle.
func (h *harness) rssSampler(run int) (stop func() float64, err error) {
	pid := h.cfg.operatorPID
	if pid == 0 {
		if pid, err = findOperator("/proc"); err != nil {
			return nil, err
		}
	}
	idle, _, err := rssMiB("/proc", pid)
	if err != nil {
		return nil, err
	}
	if run == 0 {
		h.cp.OperatorIdleMiB = idle
	}
	done, finished := make(chan struct{}), make(chan float64)
	go func() {
		peak := idle
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				finished <- peak
				return
			case <-t.C:
				if rss, _, err := rssMiB("/proc", pid); err == nil && rss > peak {
					peak = rss
				}
			}
		}
	}()
	return func() float64 { close(done); return <-finished }, nil
}

// scale creates many configurations at once and waits for their CronJobs
// and for every one to be Ready.
func (h *harness) scale(ctx context.Context, run int) error {
	ns, cleanup, err := h.namespace(ctx, "scale")
	if err != nil {
		return err
	}
	defer cleanup()
	if err := h.base(ctx, ns); err != nil {
		return err
	}
	if err := errors.Join(h.pvc(ctx, ns, "data"), h.repository(ctx, ns, "repo")); err != nil {
		return err
	}
	stopRSS, rssErr := h.rssSampler(run)
	if rssErr != nil && run == 0 {
		h.cp.Notes = append(h.cp.Notes, "operator RSS not measured: "+rssErr.Error())
	}
	n := h.cfg.configs
	prefix := key(ns, names.CronJob("scale-"))
	start := time.Now()
	if err := parallel(n, 32, func(i int) error {
		return h.backupConfig(ctx, ns, fmt.Sprintf("scale-%04d", i), "repo", "data", false)
	}); err != nil {
		return err
	}
	created := time.Since(start)
	err = waitUntil(ctx, 10*time.Minute, fmt.Sprintf("%d CronJobs", n), func() bool { seen, _ := h.obs.countCronJobs(prefix); return seen >= n })
	seen, last := h.obs.countCronJobs(prefix)
	readyPrefix := key(ns, "scale-")
	if err == nil {
		err = waitUntil(ctx, 10*time.Minute, fmt.Sprintf("%d BackupConfigurations Ready", n), func() bool { r, _ := h.obs.count(h.obs.bcReady, readyPrefix); return r >= n })
	}
	ready, lastReady := h.obs.count(h.obs.bcReady, readyPrefix)
	var rss float64
	if stopRSS != nil {
		rss = stopRSS() // after every status write (Ready) too
		h.cp.OperatorRSSMiB = append(h.cp.OperatorRSSMiB, rss)
	}
	if run == 0 || seen < h.cp.CronJobsSeen {
		h.cp.CronJobsSeen = seen
	}
	if run == 0 || ready < h.cp.ReadySeen {
		h.cp.ReadySeen = ready
	}
	h.cp.Configs = n
	if seen == n {
		h.cp.ConvergeS = append(h.cp.ConvergeS, last.Sub(start).Seconds())
	}
	if ready == n {
		h.cp.ReadyS = append(h.cp.ReadyS, lastReady.Sub(start).Seconds())
	}
	if run == 0 {
		h.cp.Notes = append(h.cp.Notes, fmt.Sprintf("scale: creating the %d BackupConfigurations takes %.1f s of the convergence time (32 parallel clients)", n, created.Seconds()))
	}
	logf("scale run %d: %d/%d CronJobs, last after %.1fs; %d Ready, last after %.1fs; operator RSS %.0f MiB peak",
		run+1, seen, n, last.Sub(start).Seconds(), ready, lastReady.Sub(start).Seconds(), rss)
	if err == nil && run == 0 && slices.Contains(h.cfg.parts, "restart") {
		err = h.restartNoWrites(ctx, ns, n)
	}
	return err
}

// restartNoWrites restarts the operator over n converged configurations of
// ns and counts the objects it rewrote: the configurations and everything
// Stow made for them (CronJobs, trigger ServiceAccounts, Roles,
// RoleBindings), compared by resourceVersion before and after.
func (h *harness) restartNoWrites(ctx context.Context, ns string, n int) error {
	before, err := h.versions(ctx, ns)
	if err != nil {
		return err
	}
	_, elapsed, err := h.restartOperator(ctx, n)
	if err != nil {
		return err
	}
	after, err := h.versions(ctx, ns)
	if err != nil {
		return err
	}
	rewritten := 0
	for k, v := range before {
		if after[k] != v {
			rewritten++
		}
	}
	h.cp.RestartConfigs, h.cp.RestartObjects, h.cp.RestartRewritten, h.cp.RestartSettleS = n, len(before), rewritten, elapsed.Seconds()
	logf("restart: %d of %d objects rewritten; the new operator reconciled all %d configurations %.1fs after the old pod's deletion", rewritten, len(before), n, elapsed.Seconds())
	return nil
}

// versions maps kind/name to the resourceVersion of every BackupConfiguration,
// CronJob, ServiceAccount, Role and RoleBinding of ns.
func (h *harness) versions(ctx context.Context, ns string) (map[string]string, error) {
	out := map[string]string{}
	add := func(kind string, items []metav1.Object) {
		for _, o := range items {
			out[kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	bcs, err := h.stow.StowV1beta1().BackupConfigurations(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	add("backupconfiguration", objects(bcs.Items))
	cjs, err := h.kube.BatchV1().CronJobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	add("cronjob", objects(cjs.Items))
	sas, err := h.kube.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	add("serviceaccount", objects(sas.Items))
	roles, err := h.kube.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	add("role", objects(roles.Items))
	rbs, err := h.kube.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	add("rolebinding", objects(rbs.Items))
	return out, nil
}

// objects returns pointers to items as metav1.Objects.
func objects[T any, P interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}

// concurrentSessions starts many sessions at once, each on its own
// Repository and PVC, and waits for all of them.
func (h *harness) concurrentSessions(ctx context.Context) error {
	ns, cleanup, err := h.namespace(ctx, "concurrent")
	if err != nil {
		return err
	}
	defer cleanup()
	if err := h.base(ctx, ns); err != nil {
		return err
	}
	k := h.cfg.concurrent
	if err := parallel(k, 16, func(i int) error {
		name := fmt.Sprintf("c%03d", i)
		return errors.Join(h.pvc(ctx, ns, name), h.repository(ctx, ns, name), h.backupConfig(ctx, ns, name, name, name, true))
	}); err != nil {
		return err
	}
	if err := waitUntil(ctx, 5*time.Minute, "the configurations' CronJobs", func() bool {
		seen, _ := h.obs.countCronJobs(key(ns, names.CronJob("c")))
		return seen >= k
	}); err != nil {
		return err
	}
	sessions, jobs := make([]string, k), make([]string, k)
	for i := range k {
		sessions[i] = fmt.Sprintf("c%03d-s", i)
		jobs[i] = key(ns, names.BackupJob(sessions[i]))
	}
	start := time.Now()
	if err := parallel(k, 32, func(i int) error { return h.session(ctx, ns, fmt.Sprintf("c%03d-s", i), fmt.Sprintf("c%03d", i)) }); err != nil {
		return err
	}
	for i := range sessions {
		sessions[i] = key(ns, sessions[i])
	}
	err = waitUntil(ctx, 30*time.Minute, fmt.Sprintf("%d sessions to end", k), func() bool {
		_, ok := h.obs.latest(h.obs.sessionEnd, sessions)
		return ok
	})
	h.cp.Concurrent = k
	if t, ok := h.obs.latest(h.obs.jobAdded, jobs); ok {
		h.cp.ConcurrentJobsS = append(h.cp.ConcurrentJobsS, t.Sub(start).Seconds())
	}
	var doneS float64
	if t, ok := h.obs.latest(h.obs.sessionEnd, sessions); ok {
		doneS = t.Sub(start).Seconds()
		h.cp.ConcurrentDoneS = append(h.cp.ConcurrentDoneS, doneS)
	}
	failed := 0
	for _, s := range sessions {
		if p, _, _ := h.obs.sessionDone(s); p != v1beta1.BackupSessionSucceeded {
			failed++
		}
	}
	h.cp.ConcurrentFailed += failed
	logf("concurrent: %d sessions, all ended after %.1fs, %d not Succeeded", k, doneS, failed)
	return err
}
