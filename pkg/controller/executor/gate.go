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
	return &RepoGate{jobs: jobs, clock: clk, created: map[string]expectation{}}
}

// Acquire lets the Job jobKey (namespace/name) use the Repository repoKey.
// It returns the holder's Job key and false when another active Job uses it.
// On true, the caller must create the Job, or call Release if that fails.
func (g *RepoGate) Acquire(repoKey, jobKey string) (holder string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.activeHolder(repoKey, jobKey); h != "" {
		return h, false
	}
	g.created[repoKey] = expectation{job: jobKey, at: g.clock.Now()}
	return "", true
}

// Holder returns the key of an active Job other than jobKey using repoKey, or "".
func (g *RepoGate) Holder(repoKey, jobKey string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.activeHolder(repoKey, jobKey)
}

// Release forgets a reservation whose Job could not be created.
func (g *RepoGate) Release(repoKey, jobKey string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.created[repoKey]; ok && e.job == jobKey {
		delete(g.created, repoKey)
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
		if j.Annotations[AnnotationRepository] != repoKey || key == jobKey {
			continue
		}
		if active(j) {
			holders = append(holders, key)
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
