package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
)

// options are the operator's command-line flags.
type options struct {
	Kubeconfig       string
	Master           string
	Image            string
	ImagePullSecrets []string
	PushgatewayURL   string
	// jobsPushgatewayURL is where Jobs push: --pushgateway-url, else this
	// operator's Service.
	jobsPushgatewayURL   string
	PushgatewayListen    string
	PersistenceFile      string
	Workers              int
	PendingTimeout       time.Duration
	LeaderElect          bool
	LeaderElectNamespace string
	HealthProbeAddress   string
	ProfilingAddress     string
	ResyncPeriod         time.Duration
	KubeAPIQPS           float32
	KubeAPIBurst         int
	ClusterID            string
	LockWait             time.Duration
	MaxConcurrentJobs    int
	PodSettings          string
	// operatorURL is where Jobs reach this operator's Service (lock
	// holders); lockHostPrefix is set at start from the cluster identity.
	operatorURL    string
	lockHostPrefix string
	HookTimeout    time.Duration
	// execer runs exec hooks (pods/exec); set at start from the client.
	execer hookrun.Execer
}

// defaultImageRepo is where hack/build-image.sh's image is published; with
// --image unset and no own Pod to read (outside the cluster), the Jobs run
// its tag of this operator's version (dev by default, as deploy/ installs).
const defaultImageRepo = "docker.io/stowhq/stow"

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "Path to a kubeconfig file. Empty: the in-cluster config (or $KUBECONFIG).")
	fs.StringVar(&o.Master, "master", "", "Address of the Kubernetes API server; overrides the server in --kubeconfig.")
	fs.StringVar(&o.Image, "image", "", "Image of the in-Job runner (stow and restic) used by the built-in Functions and the trigger CronJobs. Default: the image of this operator's own container (its Pod $POD_NAME in $POD_NAMESPACE), so installing another image (kustomize images:, Helm image.tag) changes both; outside a Pod "+defaultImageRepo+":<version>.")
	fs.StringSliceVar(&o.ImagePullSecrets, "image-pull-secrets", nil, "Names of image pull Secrets added to every Job and CronJob pod (comma-separated).")
	fs.StringVar(&o.PushgatewayURL, "pushgateway-url", "", "An external Pushgateway that Jobs and the operator push to instead of the embedded one. Default: the embedded Pushgateway, which Jobs reach at http://stow-operator.<POD_NAMESPACE>.svc:<port of --pushgateway-listen>.")
	fs.StringVar(&o.PushgatewayListen, "pushgateway-listen", ":56789", "Address of the embedded Pushgateway. Its /metrics serves pushed metrics and the operator's own (workqueues, reconciles, sessions by phase).")
	fs.StringVar(&o.PersistenceFile, "pushgateway-persistence-file", "", "File the embedded Pushgateway persists metrics to, so they survive restarts. Empty: in memory only.")
	fs.IntVar(&o.Workers, "workers", 8, "Concurrent reconciles per controller. They mostly wait on the API server, so more workers than CPUs pays (see bench/results.md).")
	fs.DurationVar(&o.PendingTimeout, "pending-timeout", 5*time.Minute, "How long a backup or restore pod may stay Pending (unschedulable, image pull, volume attach) before its session fails.")
	fs.DurationVar(&o.HookTimeout, "hook-timeout", hookrun.DefaultTimeout, "How long one pre or post hook of a session may run (docs/hooks.md); a hook Job's pod gets one more minute to start.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "Run the controllers only while holding the Lease \"stow-operator\", so several replicas can run for availability.")
	fs.StringVar(&o.LeaderElectNamespace, "leader-elect-namespace", "", "Namespace of the leader-election Lease. Default: $POD_NAMESPACE.")
	fs.StringVar(&o.HealthProbeAddress, "health-probe-bind-address", ":8081", "Address serving /healthz (liveness) and /readyz (readiness).")
	fs.StringVar(&o.ProfilingAddress, "profiling-address", "", "Address serving Go's runtime profiles (/debug/pprof/), e.g. localhost:6060. Empty (default): off.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", 10*time.Minute, "How often informers resync, re-examining every object.")
	// client-go's own default (5 QPS) makes 1,000 BackupConfigurations take
	// minutes to converge; the API server's priority and fairness protects
	// it from a client that asks for more. A new configuration costs two
	// writes of Stow objects (finalizer, status) and one of a Kubernetes
	// object (its CronJob): at 100 QPS, 5,000 of them could not converge in
	// under 100 s. Each client (Stow's, Kubernetes', Events') has its own limit.
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", 200, "Sustained requests per second to the API server, per client (Stow objects, Kubernetes objects, Events; client-side limit).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 400, "Requests allowed in a burst above --kube-api-qps.")
	fs.StringVar(&o.ClusterID, "cluster-id", "", "Identity of this cluster, from which the hostname prefix of Stow's Job pods is derived (restic records hostnames in its locks; a lock of this cluster's Stow pods is removed once the pod no longer runs). Default: the UID of namespace kube-system. Two clusters sharing a bucket must differ.")
	fs.DurationVar(&o.LockWait, "lock-wait", 35*time.Minute, "How long a Job of a session without timeOut waits for a restic lock held by someone else before it fails naming the holder (with timeOut: until shortly before the deadline). restic considers a lock older than 30 minutes stale.")
	fs.StringVar(&o.PodSettings, "pod-settings", "admission", "How the operator treats objects asking for pod settings beyond a restricted pod (root, privileged, hostPath, serviceAccountName, ...; docs/security.md): admission runs them only when the admission policy stow.dev-pod-settings checked who wrote them; trust runs them unchecked (only admins write Stow objects); refuse never runs them.")
	fs.IntVar(&o.MaxConcurrentJobs, "max-concurrent-jobs", 50, "Most backup and restore Jobs running at once in the cluster; further sessions wait (condition ExecutorWaiting, reason TooManyJobs). 0: no limit.")
}

// complete fills defaults that depend on the environment and checks values.
func (o *options) complete() error {
	podNS := os.Getenv("POD_NAMESPACE")
	if o.LeaderElectNamespace == "" {
		o.LeaderElectNamespace = podNS
	}
	if o.LeaderElect && o.LeaderElectNamespace == "" {
		return fmt.Errorf("--leader-elect needs --leader-elect-namespace or $POD_NAMESPACE")
	}
	// Jobs reach this operator through its Service, on the port of the
	// embedded Pushgateway (which also answers lock-holder questions).
	ns := podNS
	if ns == "" {
		ns = "stow-system"
	}
	port := "56789"
	if _, p, err := net.SplitHostPort(o.PushgatewayListen); err == nil && p != "" {
		port = p
	}
	o.operatorURL = fmt.Sprintf("http://stow-operator.%s.svc:%s", ns, port)
	o.jobsPushgatewayURL = o.PushgatewayURL
	if o.jobsPushgatewayURL == "" {
		o.jobsPushgatewayURL = o.operatorURL
	}
	if o.LockWait <= 0 {
		return fmt.Errorf("--lock-wait must be positive, not %s", o.LockWait)
	}
	if o.MaxConcurrentJobs < 0 {
		return fmt.Errorf("--max-concurrent-jobs must be 0 (no limit) or positive, not %d", o.MaxConcurrentJobs)
	}
	if o.Workers < 1 {
		return fmt.Errorf("--workers must be at least 1, not %d", o.Workers)
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-qps must be positive and --kube-api-burst at least 1, not %g and %d", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if o.PendingTimeout <= 0 {
		return fmt.Errorf("--pending-timeout must be positive, not %s", o.PendingTimeout)
	}
	if o.HookTimeout <= 0 {
		return fmt.Errorf("--hook-timeout must be positive, not %s", o.HookTimeout)
	}
	if _, err := podguard.ParseMode(o.PodSettings); err != nil {
		return fmt.Errorf("--pod-settings: %w", err)
	}
	return nil
}
