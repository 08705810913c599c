package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// The operator's own metrics live on prometheus.DefaultRegisterer, the
// registry the embedded Pushgateway checks pushes against: a push that
// clashes with one of them is rejected instead of breaking scrapes.

// Workqueue metrics under the standard client-go/component-base names, so
// existing controller dashboards read them. Label "name" is the queue name.
var (
	wqDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "depth",
		Help: "Current depth of workqueue.",
	}, []string{"name"})
	wqAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "workqueue", Name: "adds_total",
		Help: "Total number of adds handled by workqueue.",
	}, []string{"name"})
	wqLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "workqueue", Name: "queue_duration_seconds",
		Help:    "How long in seconds an item stays in workqueue before being requested.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	wqWorkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "workqueue", Name: "work_duration_seconds",
		Help:    "How long in seconds processing an item from workqueue takes.",
		Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
	}, []string{"name"})
	wqUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "unfinished_work_seconds",
		Help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads.",
	}, []string{"name"})
	wqLongest = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "longest_running_processor_seconds",
		Help: "How many seconds has the longest running processor for workqueue been running.",
	}, []string{"name"})
	wqRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "workqueue", Name: "retries_total",
		Help: "Total number of retries handled by workqueue.",
	}, []string{"name"})
)

// Reconcile metrics, one series per controller.
var (
	reconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stow_reconcile_duration_seconds",
		Help:    "Time one reconcile of a Stow controller takes.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"controller"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stow_reconcile_errors_total",
		Help: "Reconciles of a Stow controller that returned an error (and were requeued).",
	}, []string{"controller"})
)

// hookExecutions counts the hooks of sessions by outcome, so an alert can
// say which hook fails (docs/hooks.md).
var hookExecutions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "stow_hook_executions_total",
	Help: "Hooks of BackupSessions and RestoreSessions run or skipped, by session kind, hook (preBackup, postBackup, preRestore, postRestore) and result (succeeded, failed, skipped).",
}, []string{"kind", "hook", "result"})

// ObserveHook counts one hook outcome (result: succeeded, failed or skipped).
func ObserveHook(kind, hook, result string) {
	hookExecutions.WithLabelValues(kind, hook, result).Inc()
}

func init() {
	prometheus.MustRegister(wqDepth, wqAdds, wqLatency, wqWorkDuration, wqUnfinished, wqLongest, wqRetries,
		reconcileDuration, reconcileErrors, hookExecutions)
	// Queues pick the provider up when they are created; doing it at init
	// means every queue of a process importing this package is measured.
	workqueue.SetProvider(workqueueProvider{})
}

type workqueueProvider struct{}

func (workqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return wqDepth.WithLabelValues(name)
}
func (workqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return wqAdds.WithLabelValues(name)
}
func (workqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return wqLatency.WithLabelValues(name)
}
func (workqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return wqWorkDuration.WithLabelValues(name)
}
func (workqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return wqUnfinished.WithLabelValues(name)
}
func (workqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return wqLongest.WithLabelValues(name)
}
func (workqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return wqRetries.WithLabelValues(name)
}

// ObserveReconcile records one reconcile of controller that started at start
// and ended with err. Call it as: defer func() { metrics.ObserveReconcile("backupsession", start, err) }().
func ObserveReconcile(controller string, start time.Time, err error) {
	reconcileDuration.WithLabelValues(controller).Observe(time.Since(start).Seconds())
	// Materialize the counter at 0 so rate() alerts work before the first error.
	c := reconcileErrors.WithLabelValues(controller)
	if err != nil {
		c.Inc()
	}
}

var (
	backupSessionsDesc = prometheus.NewDesc("stow_backupsessions",
		"BackupSessions that exist, by namespace and phase.", []string{"namespace", "phase"}, nil)
	restoreSessionsDesc = prometheus.NewDesc("stow_restoresessions",
		"RestoreSessions that exist, by namespace and phase.", []string{"namespace", "phase"}, nil)

	backupPhases = []string{
		string(v1beta1.BackupSessionPending), string(v1beta1.BackupSessionSkipped), string(v1beta1.BackupSessionRunning),
		string(v1beta1.BackupSessionSucceeded), string(v1beta1.BackupSessionFailed), string(v1beta1.BackupSessionUnknown),
	}
	restorePhases = []string{
		string(v1beta1.RestorePending), string(v1beta1.RestoreRunning), string(v1beta1.RestoreSucceeded),
		string(v1beta1.RestoreFailed), string(v1beta1.RestoreUnknown), string(v1beta1.RestoreInvalid),
	}
)

// NewSessionCollector counts sessions by namespace and phase at scrape time,
// from list functions such as informer listers' List(labels.Everything()).
// Every phase of a namespace that has sessions is reported, 0 included, so
// queries on one phase do not see gaps. A session without a phase yet counts
// as Pending. Register it on prometheus.DefaultRegisterer (or pass it in
// ServerOptions.Collectors).
func NewSessionCollector(listBackup func() ([]*v1beta1.BackupSession, error), listRestore func() ([]*v1beta1.RestoreSession, error)) prometheus.Collector {
	return &sessionCollector{listBackup: listBackup, listRestore: listRestore}
}

type sessionCollector struct {
	listBackup  func() ([]*v1beta1.BackupSession, error)
	listRestore func() ([]*v1beta1.RestoreSession, error)
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backupSessionsDesc
	ch <- restoreSessionsDesc
}

// Collect never reports an error metric: the Pushgateway checks every push
// by gathering this registry, so a failing list would reject all pushes.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	if c.listBackup != nil {
		collectPhases(ch, backupSessionsDesc, backupPhases, "BackupSessions", c.listBackup,
			func(s *v1beta1.BackupSession) (string, string) { return s.Namespace, string(s.Status.Phase) }, string(v1beta1.BackupSessionPending))
	}
	if c.listRestore != nil {
		collectPhases(ch, restoreSessionsDesc, restorePhases, "RestoreSessions", c.listRestore,
			func(s *v1beta1.RestoreSession) (string, string) { return s.Namespace, string(s.Status.Phase) }, string(v1beta1.RestorePending))
	}
}

// collectPhases sends desc's counts of the sessions list returns, by
// namespace and phase (of tells a session's); a session without a phase
// counts as empty. A failed list is logged and sends nothing.
func collectPhases[T comparable](ch chan<- prometheus.Metric, desc *prometheus.Desc, phases []string, what string,
	list func() ([]T, error), of func(T) (ns, phase string), empty string) {
	sessions, err := list()
	if err != nil {
		klog.ErrorS(err, "metrics: cannot list "+what)
		return
	}
	counts := map[string]map[string]int{}
	var none T
	for _, s := range sessions {
		if s != none {
			ns, phase := of(s)
			bump(counts, ns, phase, empty)
		}
	}
	emit(ch, desc, counts, phases)
}

func bump(counts map[string]map[string]int, ns, phase, empty string) {
	if phase == "" {
		phase = empty
	}
	if counts[ns] == nil {
		counts[ns] = map[string]int{}
	}
	counts[ns][phase]++
}

func emit(ch chan<- prometheus.Metric, desc *prometheus.Desc, counts map[string]map[string]int, phases []string) {
	nss := make([]string, 0, len(counts))
	for ns := range counts {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		seen := map[string]bool{}
		for _, p := range phases {
			seen[p] = true
			send(ch, desc, float64(counts[ns][p]), ns, p)
		}
		// A phase this build does not know still gets counted.
		for p, n := range counts[ns] {
			if !seen[p] {
				send(ch, desc, float64(n), ns, p)
			}
		}
	}
}

// send drops a series whose label values are not valid (e.g. not UTF-8)
// instead of panicking in the scrape.
func send(ch chan<- prometheus.Metric, desc *prometheus.Desc, v float64, labelValues ...string) {
	m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labelValues...)
	if err != nil {
		klog.ErrorS(err, "metrics: dropping session count", "labels", labelValues)
		return
	}
	ch <- m
}
