// Command stow-operator runs Stow's controllers: BackupConfiguration,
// Repository, BackupSession and RestoreSession, with the embedded Pushgateway.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	stowscheme "github.com/stowhq/stow/client/clientset/versioned/scheme"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/controller/backupconfiguration"
	"github.com/stowhq/stow/pkg/controller/backupsession"
	"github.com/stowhq/stow/pkg/controller/builtins"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/controller/repository"
	"github.com/stowhq/stow/pkg/controller/restoresession"
	"github.com/stowhq/stow/pkg/controller/session"
	"github.com/stowhq/stow/pkg/controller/trim"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/lenient"
	"github.com/stowhq/stow/pkg/lockholder"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
	"github.com/stowhq/stow/pkg/version"
)

const leaseName = "stow-operator"

func main() {
	var o options
	fs := pflag.NewFlagSet("stow-operator", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "stow-operator backs up and restores PersistentVolumeClaims with restic.\n\nUsage:\n  stow-operator [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}
	o.addFlags(fs)
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println(version.String("stow-operator"))
		os.Exit(0)
	}
	if err := o.complete(); err != nil {
		fmt.Fprintln(os.Stderr, "stow-operator:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "stow-operator failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func restConfig(o options) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{}
	if o.Master != "" {
		overrides.ClusterInfo.Server = o.Master
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client config: %w", err)
	}
	cfg.UserAgent = "stow-operator"
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	return cfg, nil
}

// protobuf is cfg speaking protobuf, as kube-controller-manager's clients
// do: Kubernetes' own kinds (CronJobs, Jobs, pods, Events) cost the API
// server and the operator less to encode and decode than in JSON. Stow's
// kinds are CRDs, which only speak JSON (pkg/lenient).
func protobuf(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return c
}

func run(ctx context.Context, o options) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting stow-operator", "version", version.Version, "build", version.String("stow-operator"))
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(protobuf(cfg))
	if err != nil {
		return fmt.Errorf("build Kubernetes client: %w", err)
	}
	o.execer = hookrun.PodExec{Config: cfg, Kube: kube}
	// Lenient: one stored object the operator cannot decode must not stop
	// the informers of its kind for every namespace (pkg/lenient).
	stow, err := lenient.NewClientset(cfg)
	if err != nil {
		return fmt.Errorf("build Stow client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build metadata client: %w", err)
	}
	if err := stowscheme.AddToScheme(scheme.Scheme); err != nil {
		return fmt.Errorf("register Stow types for events: %w", err)
	}
	// Events go through a client of their own: its rate limit is not the
	// reconciles' (two Events of each of 5,000 new configurations would
	// otherwise wait in line with their CronJobs). Events are best effort:
	// the broadcaster drops what it cannot send in time.
	events, err := kubernetes.NewForConfig(protobuf(cfg))
	if err != nil {
		return fmt.Errorf("build Events client: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "stow-operator"})

	health := newHealth()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := health.serve(ctx, o.HealthProbeAddress); err != nil {
			logger.Error(err, "Health probe server failed")
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serveProfiling(ctx, o.ProfilingAddress); err != nil {
			logger.Error(err, "Profiling server failed")
		}
	}()

	// Jobs recognize this cluster's Stow pods in restic locks by their
	// hostname prefix, derived from the cluster's identity.
	clusterID, err := clusterIdentity(ctx, kube, o.ClusterID)
	if err != nil {
		return err
	}
	o.lockHostPrefix = names.LockHostPrefix(clusterID)
	logger.Info("Lock host prefix of this cluster's Job pods", "prefix", o.lockHostPrefix)

	// The embedded Pushgateway runs on every replica: Jobs push through the
	// Service to any ready one, and ask there whether a lock holder still
	// runs. A failure of it stops the operator.
	sessions := &sessionListers{}
	metricsErrs := make(chan error, 1)
	// The answers list pods through a client of their own, with a small
	// rate limit: the port is open to every pod, and its questions must
	// not queue the reconciles' API calls behind them.
	holderCfg := rest.CopyConfig(cfg)
	holderCfg.QPS, holderCfg.Burst = 5, 10
	holderKube, err := kubernetes.NewForConfig(protobuf(holderCfg))
	if err != nil {
		return fmt.Errorf("build lock-holder client: %w", err)
	}
	holders := lockholder.Handler(o.lockHostPrefix, func(ctx context.Context, selector string) ([]corev1.Pod, error) {
		list, err := holderKube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	})
	pusher, err := startMetrics(ctx, o, sessions, map[string]http.Handler{lockholder.Path: holders}, metricsErrs)
	if err != nil {
		return fmt.Errorf("start metrics: %w", err)
	}
	ctx, cancel, metricsFailure := failOn(ctx, metricsErrs)
	defer cancel()

	runControllers := func(ctx context.Context) error {
		return runOperator(ctx, o, kube, meta, stow, recorder, health, pusher, sessions)
	}
	var runErr error
	if !o.LeaderElect {
		runErr = runControllers(ctx)
	} else {
		runErr = runWithLeaderElection(ctx, o, kube, recorder, health, runControllers)
	}
	wg.Wait()
	if err := metricsFailure(); runErr == nil && err != nil {
		runErr = err
	}
	return runErr
}

// failOn returns a context that ends when ctx does or when errs delivers an
// error, and failure, which returns that error (nil when ctx ended first).
// Only such an error makes the operator exit non-zero: the end of ctx is
// SIGTERM or SIGINT, a normal shutdown. signal.NotifyContext ends ctx with
// a cause naming the signal ("terminated signal received"); taken for a
// failure, it made every replaced pod of a rollout exit 1 (status Error).
func failOn(ctx context.Context, errs <-chan error) (context.Context, context.CancelFunc, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case err := <-errs:
			cancel(errFailed{err})
		case <-ctx.Done():
		}
	}()
	failure := func() error {
		var f errFailed
		if errors.As(context.Cause(ctx), &f) {
			return f.error
		}
		return nil
	}
	return ctx, func() { cancel(nil) }, failure
}

// errFailed marks the cause failOn ends its context with, apart from the
// causes of its parent.
type errFailed struct{ error }

// clusterIdentity is the UID of the kube-system namespace (a common cluster
// id), unless --cluster-id names one.
func clusterIdentity(ctx context.Context, kube kubernetes.Interface, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read the cluster identity (namespace kube-system; or set --cluster-id): %w", err)
	}
	return string(ns.UID), nil
}

// runWithLeaderElection runs fn while this replica holds the Lease; the
// Lease is released on shutdown so a standby takes over at once.
func runWithLeaderElection(ctx context.Context, o options, kube kubernetes.Interface, recorder record.EventRecorder, health *health, fn func(context.Context) error) error {
	id, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("leader election identity: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: o.LeaderElectNamespace},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder},
	}
	health.setReady(true) // a standby is ready: it only waits for the Lease
	// When fn ends while the Lease is still held (the controllers failed
	// to start: a transient API error, a bad flag), the elector is stopped
	// too: the Lease is released for a standby and the process exits with
	// fn's error, to be restarted. client-go ignores what OnStartedLeading
	// returns, so a leader whose controllers never ran kept renewing the
	// Lease, healthy to its probes, while no backup ran anywhere.
	electing, stopElecting := context.WithCancel(ctx)
	defer stopElecting()
	var runErr error
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            leaseName,
		WatchDog:        health.leader,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				runErr = fn(ctx)
				if runErr == nil && ctx.Err() == nil {
					runErr = errors.New("the controllers stopped while this replica held the Lease")
				}
				stopElecting()
			},
			OnStoppedLeading: func() { klog.FromContext(ctx).Info("Leadership ended", "identity", id) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(electing)
	if runErr == nil && ctx.Err() == nil {
		return errors.New("lost the leader Lease")
	}
	return runErr
}

// runOperator ensures the built-in catalog, starts metrics, informers and
// the four controllers, and returns when ctx is done.
func runOperator(ctx context.Context, o options, kube kubernetes.Interface, meta metadata.Interface, stow versioned.Interface, recorder record.EventRecorder, health *health, pusher metrics.SessionPusher, sessions *sessionListers) error {
	logger := klog.FromContext(ctx)
	o.Image = jobImage(ctx, kube, o.Image)
	if err := builtins.Ensure(ctx, stow, o.Image); err != nil {
		return err
	}
	var pullSecrets []corev1.LocalObjectReference
	for _, s := range o.ImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	ropts := resolve.Options{Image: o.Image, PushgatewayURL: o.jobsPushgatewayURL, ImagePullSecrets: pullSecrets,
		OperatorURL: o.operatorURL, LockHostPrefix: o.lockHostPrefix, DefaultLockWait: o.LockWait}

	// The operator caches only what Stow owns: Jobs, pods, CronJobs and the
	// trigger ServiceAccounts, Roles and RoleBindings carry the managed-by
	// label. What it merely checks (a Secret's key, a PVC) is
	// read on demand (pkg/controller/internal/lookup), so its memory does
	// not grow with the rest of the cluster.
	stowOwned := informers.NewSharedInformerFactoryWithOptions(kube, o.ResyncPeriod,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = labels.Set{v1beta1.LabelManagedBy: v1beta1.ManagedByStow}.String()
		}),
		// Nothing reads their managedFields or a CronJob's job template.
		informers.WithTransform(trim.Owned))
	stowInformers := externalversions.NewSharedInformerFactoryWithOptions(stow, o.ResyncPeriod, externalversions.WithTransform(trim.Stow))

	mode, err := podguard.ParseMode(o.PodSettings)
	if err != nil {
		return err
	}
	guard := podguard.New(mode, kube)
	hooks := hookrun.Config{Timeout: o.HookTimeout, Exec: o.execer,
		BuildJob: func(name, namespace string, owner metav1.OwnerReference, hookType string, h v1beta1.Handler, timeout, deadline time.Duration) (*batchv1.Job, error) {
			return resolve.HookJob(name, namespace, owner, hookType, h, timeout, deadline, ropts)
		}}
	gate := executor.NewGate(stowOwned.Batch().V1().Jobs().Lister(), stowOwned.Core().V1().Pods().Lister(), nil, o.MaxConcurrentJobs)
	sessionDeps := session.Deps{Kube: kube, Stow: stow, KubeInformers: stowOwned, StowInformers: stowInformers, Recorder: recorder, Pusher: pusher, Gate: gate}
	sessionCfg := session.Config{PendingTimeout: o.PendingTimeout, Guard: guard, Hooks: hooks}
	bs := backupsession.NewController(sessionDeps, backupsession.Config{
		BuildJob: func(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function) (*batchv1.Job, error) {
			return resolve.BackupJob(bc, s, repo, task, fns, ropts)
		},
		Config: sessionCfg,
	})
	rs := restoresession.NewController(sessionDeps, restoresession.Config{
		BuildJobs: func(r *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, resolved []jobenv.ResolvedSnapshot) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
			return resolve.RestoreJobs(r, repo, task, fns, resolved, ropts)
		},
		Config: sessionCfg,
	})
	bc := backupconfiguration.NewController(kube, stow, stowOwned, stowInformers, recorder, ropts).WithMetrics(pusher).WithGuard(guard).
		WithWatches(metadataListWatch(meta, corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")),
			metadataListWatch(meta, corev1.SchemeGroupVersion.WithResource("namespaces")))
	repo := repository.NewController(kube, stow, stowInformers, recorder).WithGuard(guard).WithMetrics(pusher).WithMaintenance(repository.Maintenance{
		Build: func(r *v1beta1.Repository, tasks []string, runID string, created metav1.Time) (*batchv1.Job, error) {
			return resolve.MaintenanceJob(r, tasks, runID, created, ropts)
		},
		BuildWipe: func(r *v1beta1.Repository, created metav1.Time) (*batchv1.Job, error) {
			return resolve.WipeJob(r, created, ropts)
		},
		Gate: gate, PendingTimeout: o.PendingTimeout,
	}, stowOwned)
	keeper, err := builtins.NewKeeper(stow, o.Image, stowInformers, recorder)
	if err != nil {
		return err
	}
	sessions.set(stowInformers.Stow().V1beta1().BackupSessions().Lister(), stowInformers.Stow().V1beta1().RestoreSessions().Lister())

	stowOwned.Start(ctx.Done())
	stowInformers.Start(ctx.Done())

	controllers := []struct {
		name string
		run  func(context.Context, int) error
	}{
		{"backupconfiguration", bc.Run}, {"repository", repo.Run},
		{"backupsession", bs.Run}, {"restoresession", rs.Run}, {"builtins", keeper.Run},
	}
	errs := make(chan error, len(controllers))
	var wg sync.WaitGroup
	for _, c := range controllers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(ctx, o.Workers); err != nil {
				errs <- fmt.Errorf("%s controller: %w", c.name, err)
			}
		}()
	}
	stowOwned.WaitForCacheSync(ctx.Done())
	stowInformers.WaitForCacheSync(ctx.Done())
	health.setReady(true)
	logger.Info("Stow operator running", "image", o.Image, "pushgatewayURL", o.jobsPushgatewayURL, "workers", o.Workers)

	var firstErr error
	select {
	case <-ctx.Done():
	case firstErr = <-errs:
	}
	wg.Wait()
	stowOwned.Shutdown()
	stowInformers.Shutdown()
	logger.Info("Stow operator stopped")
	return firstErr
}

// metadataListWatch lists and watches the metadata of a kind in all
// namespaces: the watches of the lookup Readers, which keep nothing of the
// objects they hear about.
func metadataListWatch(meta metadata.Interface, gvr schema.GroupVersionResource) cache.ListerWatcherWithContext {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return meta.Resource(gvr).List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return meta.Resource(gvr).Watch(ctx, opts)
		},
	}
}

// health serves /healthz and /readyz.
type health struct {
	ready  atomic.Bool
	leader *leaderelection.HealthzAdaptor
}

func newHealth() *health {
	return &health{leader: leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)}
}

func (h *health) setReady(v bool) { h.ready.Store(v) }

func (h *health) serve(ctx context.Context, addr string) error {
	if addr == "" || addr == "0" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.leader.Check(r); err != nil {
			http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.ready.Load() {
			http.Error(w, "informer caches are not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return serve(ctx, "health probes", addr, mux)
}
