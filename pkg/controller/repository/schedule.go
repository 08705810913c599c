package repository

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Default maintenance schedules, close to K8up's (check and prune weekly):
// a session no longer checks or prunes, so these are what keeps a
// repository verified and compact. The -random macros spread repositories
// over the week; the task name is part of the seed so that check and prune
// of one repository do not fall on the same minute.
var defaultSchedules = map[string]string{
	v1beta1.MaintenanceCheck:   v1beta1.ScheduleWeeklyRandom,
	v1beta1.MaintenancePrune:   v1beta1.ScheduleWeeklyRandom,
	v1beta1.MaintenanceRefresh: v1beta1.ScheduleDailyRandom,
}

// firstAfterBackup are the tasks that run once right after a repository's
// first backup (prune has nothing to free yet).
var firstAfterBackup = map[string]bool{v1beta1.MaintenanceCheck: true, v1beta1.MaintenanceRefresh: true}

// taskSchedule returns the resolved cron expression of a task of repo, and
// whether scheduled runs are suspended. Unlock has no schedule.
func taskSchedule(repo *v1beta1.Repository, task string) (string, bool) {
	def, ok := defaultSchedules[task]
	if !ok {
		return "", true
	}
	var s *v1beta1.MaintenanceSchedule
	if m := repo.Spec.Maintenance; m != nil {
		switch task {
		case v1beta1.MaintenanceCheck:
			if m.Check != nil {
				s = &m.Check.MaintenanceSchedule
			}
		case v1beta1.MaintenancePrune:
			s = m.Prune
		case v1beta1.MaintenanceRefresh:
			s = m.Refresh
		}
	}
	spec, suspend := def, false
	if s != nil {
		suspend = s.Suspend
		if s.Schedule != "" {
			spec = s.Schedule
		}
	}
	return v1beta1.ResolveSchedule(repo.Namespace, repo.Name+"/"+task, spec), suspend
}

// setRun records the run of a task.
func setRun(st *v1beta1.MaintenanceStatus, task string, r *v1beta1.MaintenanceRun) {
	switch task {
	case v1beta1.MaintenanceCheck:
		st.Check = r
	case v1beta1.MaintenancePrune:
		st.Prune = r
	case v1beta1.MaintenanceRefresh:
		st.Refresh = r
	case v1beta1.MaintenanceUnlock:
		st.Unlock = r
	}
}

// plan is the maintenance due at one moment.
type plan struct {
	// tasks are due now, in run order; requests maps those asked for by
	// annotation to the annotation's value.
	tasks    []string
	requests map[string]string
	// dueAt is the earliest scheduled time among the due tasks (or the
	// moment of the request): a stable id of this run and its place in line.
	dueAt time.Time
	// next is each task's next scheduled run; wake the earliest of them.
	next map[string]time.Time
	// invalid names a schedule that cannot be parsed.
	invalid []string
}

// due decides, from repo, its maintenance status st and the time now, which
// maintenance tasks are due: those whose scheduled time since their last run
// (or since the Repository was created) has come, and those requested by a
// new annotation value. st is the status as this reconcile leaves it, not
// repo's: a run recorded in this very reconcile has answered its request.
func due(repo *v1beta1.Repository, st *v1beta1.MaintenanceStatus, now time.Time) plan {
	p := plan{requests: map[string]string{}, next: map[string]time.Time{}}
	for _, task := range v1beta1.MaintenanceTasks {
		r := st.Run(task)
		if v := repo.Annotations[v1beta1.MaintenanceRequestAnnotation(task)]; v != "" && (r == nil || r.Request != v) {
			p.tasks = append(p.tasks, task)
			p.requests[task] = v
			if p.dueAt.IsZero() || now.Before(p.dueAt) {
				p.dueAt = now.Truncate(time.Second)
			}
			continue
		}
		spec, suspended := taskSchedule(repo, task)
		if spec == "" || suspended {
			continue
		}
		sched, err := v1beta1.ParseSchedule(spec)
		if err != nil {
			p.invalid = append(p.invalid, fmt.Sprintf("spec.maintenance.%s.schedule: %v", task, err))
			continue
		}
		from := repo.CreationTimestamp.Time
		if r != nil && r.LastTime != nil {
			from = r.LastTime.Time
		}
		at := sched.Next(from)
		if at.IsZero() {
			// cron's "no time found" (a date that does not exist):
			// never due, not due long ago. ParseSchedule refuses such
			// schedules; this holds should one get through.
			p.invalid = append(p.invalid, fmt.Sprintf("spec.maintenance.%s.schedule: schedule %q never fires", task, spec))
			continue
		}
		if (r == nil || r.LastTime == nil) && repo.Status.FirstBackupTime != nil && firstAfterBackup[task] {
			// A new repository is checked and measured right after its
			// first backup, then on schedule: its status does not stay
			// empty until the first scheduled run, days later.
			at = repo.Status.FirstBackupTime.Time
		}
		if at.After(now) {
			p.next[task] = at
			continue
		}
		p.tasks = append(p.tasks, task)
		if p.dueAt.IsZero() || at.Before(p.dueAt) {
			p.dueAt = at
		}
		if next := sched.Next(now); !next.IsZero() {
			p.next[task] = next
		}
	}
	return p
}

// exclusive: the tasks need the repository alone (restic locks it
// exclusively for prune and check).
func (p plan) exclusive() bool {
	for _, t := range p.tasks {
		if t == v1beta1.MaintenancePrune || t == v1beta1.MaintenanceCheck {
			return true
		}
	}
	return false
}

// runID identifies this run, the same on every reconcile until it starts:
// the Job's name derives from it, so a lost status write adopts the Job.
func (p plan) runID() string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%d", strings.Join(p.tasks, ","), p.dueAt.Unix())
	keys := make([]string, 0, len(p.requests))
	for k := range p.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "|%s=%s", k, p.requests[k])
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

// encodeRequests renders requests as task=value,... for status.
func encodeRequests(reqs map[string]string) string {
	var parts []string
	for _, t := range v1beta1.MaintenanceTasks {
		if v, ok := reqs[t]; ok {
			parts = append(parts, t+"="+url.QueryEscape(v))
		}
	}
	return strings.Join(parts, ",")
}

func decodeRequests(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			if u, err := url.QueryUnescape(v); err == nil {
				out[k] = u
			}
		}
	}
	return out
}
