package executor

import (
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/labels"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/utils/clock"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// expectationTTL bounds how long a Job this process created but has not yet
// seen in its informer still holds the Repository. Past it, the Job was
// either never created or the cache is broken; the lister is trusted again.
const expectationTTL = 2 * time.Minute

// RepoGate serializes restic operations per Repository: a session may create
// its Job only when no other active Stow Job (backup or restore, any
// namespace) uses the same Repository. Active Jobs are read from the Job
// lister; Jobs created by this process but not yet in the cache are
// remembered (the "expectations" pattern of kube-controller-manager), so two
// workers cannot both pass the gate for one Repository.
//
// One RepoGate must be shared by every controller of the process.
type RepoGate struct {
	jobs  batchlisters.JobLister
	clock clock.PassiveClock

	mu      sync.Mutex
	created map[string]expectation // repository key -> Job created, maybe not yet observed
	// ended holds Jobs whose pod has finished (job key -> when it was
	// released): restic no longer runs, though the Job controller may take
	// a moment more to mark the Job finished. Without it the next session
	// of the Repository would wait for that, and then for its requeue.
	ended map[string]time.Time
	// waiters are the sessions refused by Acquire, woken by Release:
	// repository key -> job key -> wake.
	waiters map[string]map[string]func()
}

type expectation struct {
	job string // namespace/name
	at  time.Time
}

// NewRepoGate returns a gate reading active Jobs from jobs.
func NewRepoGate(jobs batchlisters.JobLister, clk clock.PassiveClock) *RepoGate {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &RepoGate{jobs: jobs, clock: clk, created: map[string]expectation{}, ended: map[string]time.Time{},
		waiters: map[string]map[string]func(){}}
}

// Acquire lets the Job jobKey (namespace/name) use the Repository repoKey.
// It returns the holder's Job key and false when another active Job uses it;
// then wake (if not nil) is called once the holder is released, so the
// caller can requeue at once instead of polling. On true, the caller must
// create the Job, or call Release if that fails.
func (g *RepoGate) Acquire(repoKey, jobKey string, wake func()) (holder string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.activeHolder(repoKey, jobKey); h != "" {
		if wake != nil {
			if g.waiters[repoKey] == nil {
				g.waiters[repoKey] = map[string]func(){}
			}
			g.waiters[repoKey][jobKey] = wake
		}
		return h, false
	}
	if w := g.waiters[repoKey]; w != nil {
		delete(w, jobKey)
	}
	delete(g.ended, jobKey) // a Job of this name made again holds the Repository
	g.created[repoKey] = expectation{job: jobKey, at: g.clock.Now()}
	return "", true
}

// Holder returns the key of an active Job other than jobKey using repoKey, or "".
func (g *RepoGate) Holder(repoKey, jobKey string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.activeHolder(repoKey, jobKey)
}

// Release frees the Repository from the Job jobKey: its pod has ended (or
// the Job is gone, or could not be created), so restic no longer runs even if
// the Job is not yet marked finished. Sessions waiting for the Repository are
// woken.
func (g *RepoGate) Release(repoKey, jobKey string) {
	g.mu.Lock()
	if e, ok := g.created[repoKey]; ok && e.job == jobKey {
		delete(g.created, repoKey)
	}
	if _, ok := g.ended[jobKey]; ok {
		g.mu.Unlock()
		return // released before: its waiters were woken then
	}
	g.ended[jobKey] = g.clock.Now()
	waiting := g.waiters[repoKey]
	delete(g.waiters, repoKey)
	g.mu.Unlock()
	for _, wake := range waiting {
		wake()
	}
}

// Observed drops the expectation of jobKey once the informer has seen it.
func (g *RepoGate) Observed(jobKey string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for repo, e := range g.created {
		if e.job == jobKey {
			delete(g.created, repo)
		}
	}
}

func (g *RepoGate) activeHolder(repoKey, jobKey string) string {
	all, err := g.jobs.List(labels.SelectorFromSet(labels.Set{v1beta1.LabelManagedBy: v1beta1.ManagedByStow}))
	if err != nil {
		// A lister never fails; be safe and report the Repository busy.
		return "unknown (Job cache unavailable)"
	}
	var holders []string
	observed := map[string]bool{}
	for _, j := range all {
		key := j.Namespace + "/" + j.Name
		observed[key] = true
		if _, ended := g.ended[key]; ended && !active(j) {
			delete(g.ended, key) // the lister has caught up
		}
		if j.Annotations[AnnotationRepository] != repoKey || key == jobKey {
			continue
		}
		if _, ended := g.ended[key]; !ended && active(j) {
			holders = append(holders, key)
		}
	}
	for key, at := range g.ended {
		if !observed[key] && g.clock.Since(at) > expectationTTL {
			delete(g.ended, key) // deleted, or never created
		}
	}
	if e, ok := g.created[repoKey]; ok {
		switch {
		case observed[e.job] || g.clock.Since(e.at) > expectationTTL:
			delete(g.created, repoKey) // the lister knows it now
		case e.job != jobKey:
			holders = append(holders, e.job)
		}
	}
	if len(holders) == 0 {
		return ""
	}
	sort.Strings(holders)
	return holders[0]
}

// active: the Job has not finished. A Job being deleted in the foreground
// still counts, because its pod may still run restic.
func active(j *batchv1.Job) bool {
	finished, _ := JobFinished(j)
	return !finished
}

// Requeuer is the part of a workqueue that Wake needs.
type Requeuer interface{ Add(key string) }

// Wake returns an Acquire wake function that adds the session key to q.
func Wake(q Requeuer, namespace, name string) func() {
	key := namespace + "/" + name
	return func() { q.Add(key) }
}
