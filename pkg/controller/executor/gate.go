package executor

import (
	"fmt"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/utils/clock"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Mode is how a Job uses its repository's location. restic lets backups and
// restores share a repository (non-exclusive locks); forget, prune, check
// and repairs need it alone.
type Mode string

const (
	Shared    Mode = "shared"
	Exclusive Mode = "exclusive"
)

// expectationTTL bounds how long a Job this process created but has not yet
// seen in its informer still counts. Past it, the Job was either never
// created or the cache is broken; the lister is trusted again.
const expectationTTL = 2 * time.Minute

// waiterTTL is how long a refused request keeps its place: waiting
// sessions ask again at least every WaitRequeue (seconds), so a waiter that
// stopped asking (its session was deleted or ended) no longer holds others.
const waiterTTL = 30 * time.Second

// Gate serializes restic work per backend location (restic.LocationKey), not
// per Repository object, so two Repository objects on one bucket/prefix
// follow one set of rules:
//   - a Shared Job (backup, restore) starts while no Exclusive Job runs on
//     the location, no Exclusive request waits for it, and no Shared Job
//     there has reached its exclusive part (see v1beta1.AnnotationExclusiveFrom);
//   - an Exclusive Job (maintenance) starts when no other Job uses the
//     location. Waiting exclusive work blocks new shared work, so a stream
//     of backups cannot starve it;
//   - at most maxJobs Stow Jobs run in the cluster (0: no limit); sessions
//     over the limit are admitted oldest first.
//
// Active Jobs are read from the Job lister; Jobs created by this process but
// not yet in the cache are remembered (the "expectations" pattern of
// kube-controller-manager), so two workers cannot both pass for one
// location. One Gate must be shared by every controller of the process.
type Gate struct {
	jobs    batchlisters.JobLister
	pods    corelisters.PodLister
	clock   clock.PassiveClock
	maxJobs int

	mu sync.Mutex
	// created: Jobs created, maybe not yet observed (job key -> expectation).
	created map[string]expectation
	// ended holds Jobs whose pod has finished (job key -> when released):
	// restic no longer runs, though the Job controller may take a moment
	// more to mark the Job finished.
	ended map[string]time.Time
	// waiters are refused requests (job key -> waiter), woken on Release.
	waiters map[string]waiter
}

type expectation struct {
	location string
	mode     Mode
	at       time.Time
}

type waiter struct {
	location string
	mode     Mode
	since    time.Time // when the session was created: the oldest goes first
	asked    time.Time // last Acquire
	reason   string
	wake     func()
}

// Request asks to start one Job.
type Request struct {
	// Location is restic.LocationKey of the repository.
	Location string
	// Job is the namespace/name of the Job to create.
	Job  string
	Mode Mode
	// Since is when the session was created; over the Job limit, older
	// sessions start first.
	Since time.Time
	// Wake, if not nil, is called once the request may succeed.
	Wake func()
}

// Refusal says why a request must wait: the condition reason and a message
// naming the holder.
type Refusal struct {
	Reason  string
	Message string
}

// NewGate returns a gate reading active Jobs from jobs and their pods from
// pods. maxJobs limits the Stow Jobs running at once (0: no limit).
func NewGate(jobs batchlisters.JobLister, pods corelisters.PodLister, clk clock.PassiveClock, maxJobs int) *Gate {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Gate{jobs: jobs, pods: pods, clock: clk, maxJobs: maxJobs,
		created: map[string]expectation{}, ended: map[string]time.Time{}, waiters: map[string]waiter{}}
}

// Acquire lets req.Job start, or says why it must wait (and then calls
// req.Wake once something was released). On nil, the caller must create
// the Job, or call Release if that fails.
func (g *Gate) Acquire(req Request) *Refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	act := g.active(now)
	if r := g.locationRefusal(req, act, now); r != nil {
		g.wait(req, r.Reason, now)
		return r
	}
	if r := g.limitRefusal(req, act, now); r != nil {
		g.wait(req, r.Reason, now)
		return r
	}
	delete(g.waiters, req.Job)
	delete(g.ended, req.Job) // a Job of this name made again holds the location
	g.created[req.Job] = expectation{location: req.Location, mode: req.Mode, at: now}
	return nil
}

func (g *Gate) wait(req Request, reason string, now time.Time) {
	w := g.waiters[req.Job]
	w.location, w.mode, w.since, w.asked, w.reason = req.Location, req.Mode, req.Since, now, reason
	if req.Wake != nil {
		w.wake = req.Wake
	}
	g.waiters[req.Job] = w
}

// activeJob is a Job that may run restic on a location.
type activeJob struct {
	key, location string
	mode          Mode
	// exclusiveNow: a Shared Job that has reached its exclusive part.
	exclusiveNow bool
}

func (g *Gate) locationRefusal(req Request, act []activeJob, now time.Time) *Refusal {
	var holders []string
	for _, j := range act {
		if j.location != req.Location || j.key == req.Job {
			continue
		}
		if req.Mode == Exclusive || j.mode == Exclusive || j.exclusiveNow {
			holders = append(holders, j.key)
		}
	}
	if len(holders) > 0 {
		sort.Strings(holders)
		what := "restic work on one repository that needs it alone (forget, prune, check) waits for the others, and they for it"
		if req.Mode == Shared {
			what = "backups and restores share a repository, but not with work that needs it alone (forget, prune, check)"
		}
		return &Refusal{Reason: v1beta1.RepositoryInUse,
			Message: fmt.Sprintf("waiting: repository %s is in use by Job %s; %s", req.Location, holders[0], what)}
	}
	if req.Mode == Shared {
		// Exclusive work already waiting goes first.
		for key, w := range g.waiters {
			if key != req.Job && w.location == req.Location && w.mode == Exclusive && now.Sub(w.asked) < waiterTTL {
				return &Refusal{Reason: v1beta1.RepositoryInUse,
					Message: fmt.Sprintf("waiting: Job %s waits to use repository %s alone (forget, prune or check) and goes first", key, req.Location)}
			}
		}
	}
	return nil
}

func (g *Gate) limitRefusal(req Request, act []activeJob, now time.Time) *Refusal {
	if g.maxJobs <= 0 {
		return nil
	}
	running := 0
	for _, j := range act {
		if j.key != req.Job {
			running++
		}
	}
	// Sessions waiting for a slot that are older than this one go first.
	ahead := 0
	for key, w := range g.waiters {
		if key != req.Job && w.reason == v1beta1.TooManyJobs && now.Sub(w.asked) < waiterTTL && w.since.Before(req.Since) {
			ahead++
		}
	}
	if running+ahead < g.maxJobs {
		return nil
	}
	return &Refusal{Reason: v1beta1.TooManyJobs, Message: fmt.Sprintf(
		"waiting: %d Stow Jobs are running and %d older sessions wait; at most %d run at once (operator flag --max-concurrent-jobs)",
		running, ahead, g.maxJobs)}
}

// active lists the Jobs that may run restic, from the lister and the
// expectations, and forgets what the lister has caught up with.
func (g *Gate) active(now time.Time) []activeJob {
	all, err := g.jobs.List(labels.SelectorFromSet(labels.Set{v1beta1.LabelManagedBy: v1beta1.ManagedByStow}))
	var out []activeJob
	if err != nil {
		// A lister never fails; be safe and report everything busy.
		return []activeJob{{key: "unknown (Job cache unavailable)", mode: Exclusive}}
	}
	observed := map[string]bool{}
	for _, j := range all {
		if j.Labels[v1beta1.LabelComponent] == v1beta1.ComponentHook {
			continue // a hook Job runs no restic and holds no location (docs/hooks.md)
		}
		key := j.Namespace + "/" + j.Name
		observed[key] = true
		if _, ended := g.ended[key]; ended && !jobActive(j) {
			delete(g.ended, key) // the lister has caught up
		}
		if _, ended := g.ended[key]; ended || !jobActive(j) {
			continue
		}
		loc, mode := JobLock(j)
		out = append(out, activeJob{key: key, location: loc, mode: mode, exclusiveNow: g.reachedExclusive(j)})
	}
	for key, at := range g.ended {
		if !observed[key] && now.Sub(at) > expectationTTL {
			delete(g.ended, key) // deleted, or never created
		}
	}
	for key, e := range g.created {
		if observed[key] || now.Sub(e.at) > expectationTTL {
			delete(g.created, key) // the lister knows it now
			continue
		}
		if _, ended := g.ended[key]; !ended {
			out = append(out, activeJob{key: key, location: e.location, mode: e.mode})
		}
	}
	for key, w := range g.waiters {
		if now.Sub(w.asked) > expectationTTL {
			delete(g.waiters, key)
		}
	}
	return out
}

// JobLock reads the location and mode a Job was created with. A Job made
// before locations existed counts as exclusive on its Repository object.
func JobLock(j *batchv1.Job) (location string, mode Mode) {
	location = j.Annotations[v1beta1.AnnotationLocation]
	mode = Mode(j.Annotations[v1beta1.AnnotationLockMode])
	if location == "" {
		location = "repository:" + j.Annotations[v1beta1.AnnotationRepository]
	}
	if mode != Shared {
		mode = Exclusive
	}
	return location, mode
}

// reachedExclusive tells whether a Shared Job's pod has started the
// container named in v1beta1.AnnotationExclusiveFrom (its retention step).
func (g *Gate) reachedExclusive(j *batchv1.Job) bool {
	name := j.Annotations[v1beta1.AnnotationExclusiveFrom]
	if name == "" || g.pods == nil {
		return false
	}
	pods, err := g.pods.Pods(j.Namespace).List(labels.SelectorFromSet(labels.Set{batchv1.JobNameLabel: j.Name}))
	if err != nil {
		return false
	}
	for _, p := range pods {
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if cs.Name == name && (cs.State.Running != nil || cs.State.Terminated != nil) {
				return true
			}
		}
	}
	return false
}

// Release frees the location from the Job jobKey: its pod has ended (or the
// Job is gone, or could not be created), so restic no longer runs even if
// the Job is not yet marked finished. Every waiting session is woken: the
// rules above decide which of them starts.
func (g *Gate) Release(jobKey string) {
	g.mu.Lock()
	delete(g.created, jobKey)
	if _, ok := g.ended[jobKey]; ok {
		g.mu.Unlock()
		return // released before: the waiters were woken then
	}
	g.ended[jobKey] = g.clock.Now()
	var wake []func()
	for _, w := range g.waiters {
		if w.wake != nil {
			wake = append(wake, w.wake)
		}
	}
	g.mu.Unlock()
	for _, f := range wake {
		f()
	}
}

// Observed drops the expectation of jobKey once the informer has seen it.
func (g *Gate) Observed(jobKey string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.created, jobKey)
}

// jobActive: the Job has not finished. A Job being deleted in the
// foreground still counts, because its pod may still run restic.
func jobActive(j *batchv1.Job) bool {
	finished, _ := JobFinished(j)
	return !finished
}

// Requeuer is the part of a workqueue that Wake needs.
type Requeuer interface{ Add(key string) }

// Wake returns a wake function that adds the session key to q.
func Wake(q Requeuer, namespace, name string) func() {
	key := namespace + "/" + name
	return func() { q.Add(key) }
}
