package main

import (
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// key is how the observer names objects: namespace/name (the informers
// watch every namespace, other users' objects included).
func key(ns, name string) string { return ns + "/" + name }

// observer records when the harness first saw things happen, through
// informers (list + watch). Apiserver timestamps have one-second resolution,
// too coarse for a sub-second goal; watch arrival times on this host are not,
// and they are what a controller reacting to the same events would see.
type observer struct {
	mu         sync.Mutex
	jobAdded   map[string]time.Time // Job name -> first seen
	jobDone    map[string]time.Time // Job name -> first seen Complete or Failed
	podDone    map[string]time.Time // Job name -> its pod first seen Succeeded or Failed
	sessionEnd map[string]time.Time // BackupSession name -> first seen in a terminal phase
	phase      map[string]v1beta1.BackupSessionPhase
	reason     map[string]string
	step       map[string]time.Duration // BackupSession name -> its backup step's duration (status.targets[].stats[].duration)
	cronJobs   map[string]time.Time     // CronJob name -> first seen
	bcReady    map[string]time.Time     // BackupConfiguration name -> first seen with phase Ready
	// RestoreSessions: first seen in a final phase, that phase and the
	// restore step's duration (status.stats[].duration).
	restoreEnd   map[string]time.Time
	restorePhase map[string]v1beta1.RestorePhase
	restoreStep  map[string]time.Duration
	// podEvents: Job name -> what its pod did (podEvent*) -> first seen;
	// steps: Job name -> its pod's containers in the order they run.
	podEvents map[string]map[string]time.Time
	steps     map[string][]string
	now       func() time.Time
}

// What the observer records of a Job's pod, with podStarted and
// podExited for each container.
const (
	podEventCreated   = "pod created"
	podEventScheduled = "pod scheduled"
	podEventDone      = "pod Succeeded or Failed"
)

func podStarted(container string) string { return container + " started" }
func podExited(container string) string  { return container + " exited" }

func newObserver() *observer {
	return &observer{
		jobAdded: map[string]time.Time{}, jobDone: map[string]time.Time{}, podDone: map[string]time.Time{}, sessionEnd: map[string]time.Time{},
		phase: map[string]v1beta1.BackupSessionPhase{}, reason: map[string]string{}, step: map[string]time.Duration{}, cronJobs: map[string]time.Time{},
		bcReady: map[string]time.Time{}, restoreEnd: map[string]time.Time{}, restorePhase: map[string]v1beta1.RestorePhase{},
		restoreStep: map[string]time.Duration{}, podEvents: map[string]map[string]time.Time{}, steps: map[string][]string{},
		now: time.Now,
	}
}

func firstSeen(m map[string]time.Time, k string, t time.Time) {
	if _, ok := m[k]; !ok {
		m[k] = t
	}
}

func terminal(p v1beta1.BackupSessionPhase) bool {
	switch p {
	case v1beta1.BackupSessionSucceeded, v1beta1.BackupSessionFailed, v1beta1.BackupSessionSkipped, v1beta1.BackupSessionUnknown:
		return true
	}
	return false
}

func (o *observer) onJob(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	t := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	firstSeen(o.jobAdded, key(j.Namespace, j.Name), t)
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			firstSeen(o.jobDone, key(j.Namespace, j.Name), t)
		}
	}
}

// onPod records when a Job's pod ended: restic is done then, and the
// operator reads the result from the pod, not from the Job (which the Job
// controller marks finished a moment later).
func (o *observer) onPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	job := p.Labels[batchv1.JobNameLabel]
	if job == "" {
		return
	}
	t := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := key(p.Namespace, job)
	ev := o.podEvents[k]
	if ev == nil {
		ev = map[string]time.Time{}
		o.podEvents[k] = ev
		for _, c := range append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
			o.steps[k] = append(o.steps[k], c.Name)
		}
	}
	firstSeen(ev, podEventCreated, t)
	if p.Spec.NodeName != "" {
		firstSeen(ev, podEventScheduled, t)
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		// A short container may be seen exited without ever being seen running.
		if cs.State.Running != nil || cs.State.Terminated != nil {
			firstSeen(ev, podStarted(cs.Name), t)
		}
		if cs.State.Terminated != nil {
			firstSeen(ev, podExited(cs.Name), t)
		}
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		firstSeen(ev, podEventDone, t)
		firstSeen(o.podDone, k, t)
	}
}

// podTimeline is what the pod of Job k was first seen doing, and its
// containers in the order they run.
func (o *observer) podTimeline(k string) (map[string]time.Time, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]time.Time, len(o.podEvents[k]))
	for e, t := range o.podEvents[k] {
		out[e] = t
	}
	return out, append([]string(nil), o.steps[k]...)
}

func (o *observer) onRestore(obj any) {
	rs, ok := obj.(*v1beta1.RestoreSession)
	if !ok || !rs.Status.Phase.IsFinal() {
		return
	}
	t := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := key(rs.Namespace, rs.Name)
	if _, seen := o.restoreEnd[k]; seen {
		return
	}
	o.restoreEnd[k], o.restorePhase[k] = t, rs.Status.Phase
	var step time.Duration
	for _, h := range rs.Status.Stats {
		if d, err := time.ParseDuration(h.Duration); err == nil {
			step += d
		}
	}
	if step > 0 {
		o.restoreStep[k] = step
	}
}

// restoreDone is how RestoreSession k ended, when it did.
func (o *observer) restoreDone(k string) (phase v1beta1.RestorePhase, end time.Time, step time.Duration, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	end, ok = o.restoreEnd[k]
	return o.restorePhase[k], end, o.restoreStep[k], ok
}

func (o *observer) onSession(obj any) {
	s, ok := obj.(*v1beta1.BackupSession)
	if !ok || !terminal(s.Status.Phase) {
		return
	}
	t := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	k := key(s.Namespace, s.Name)
	firstSeen(o.sessionEnd, k, t)
	if _, ok := o.phase[k]; !ok {
		o.phase[k], o.reason[k] = s.Status.Phase, s.Status.Reason
	}
	var step time.Duration
	for _, t := range s.Status.Targets {
		for _, h := range t.Stats {
			if d, err := time.ParseDuration(h.Duration); err == nil {
				step += d
			}
		}
	}
	if step > 0 {
		o.step[k] = step
	}
}

// stepOf is the backup step's duration that session k reported, if any.
func (o *observer) stepOf(k string) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d, ok := o.step[k]
	return d, ok
}

func (o *observer) onCronJob(obj any) {
	if c, ok := obj.(*batchv1.CronJob); ok {
		t := o.now()
		o.mu.Lock()
		firstSeen(o.cronJobs, key(c.Namespace, c.Name), t)
		o.mu.Unlock()
	}
}

func (o *observer) onConfig(obj any) {
	if bc, ok := obj.(*v1beta1.BackupConfiguration); ok && bc.Status.Phase == v1beta1.BackupInvokerReady {
		t := o.now()
		o.mu.Lock()
		firstSeen(o.bcReady, key(bc.Namespace, bc.Name), t)
		o.mu.Unlock()
	}
}

// handler adapts an on* function to informer events (deletes are ignored).
func handler(f func(any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, n any) { f(n) }}
}

// countCronJobs returns how many CronJobs whose namespace/name has the prefix were seen and when
// the last of them was.
func (o *observer) countCronJobs(prefix string) (int, time.Time) {
	return o.count(o.cronJobs, prefix)
}

// count returns how many keys of m have the prefix and the latest of their times.
func (o *observer) count(m map[string]time.Time, prefix string) (int, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int
	var last time.Time
	for name, t := range m {
		if strings.HasPrefix(name, prefix) {
			n++
			if t.After(last) {
				last = t
			}
		}
	}
	return n, last
}

func (o *observer) sessionDone(k string) (v1beta1.BackupSessionPhase, string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.phase[k]
	return p, o.reason[k], ok
}

// latencies pairs start[k] with end[k] for each key and returns the
// differences in seconds; keys missing either side are counted, not guessed.
func latencies(keys []string, start, end func(string) (time.Time, bool)) (out []float64, missing int) {
	for _, k := range keys {
		s, ok1 := start(k)
		e, ok2 := end(k)
		if !ok1 || !ok2 {
			missing++
			continue
		}
		out = append(out, e.Sub(s).Seconds())
	}
	return out, missing
}

// lookup returns a locked reader of one of the observer's maps.
func (o *observer) lookup(m map[string]time.Time) func(string) (time.Time, bool) {
	return func(k string) (time.Time, bool) {
		o.mu.Lock()
		defer o.mu.Unlock()
		t, ok := m[k]
		return t, ok
	}
}

// latest is the latest of the times of keys in m (ok false if any is missing).
func (o *observer) latest(m map[string]time.Time, keys []string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Time
	for _, k := range keys {
		t, ok := m[k]
		if !ok {
			return time.Time{}, false
		}
		if t.After(last) {
			last = t
		}
	}
	return last, true
}
