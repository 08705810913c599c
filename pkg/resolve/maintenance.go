package resolve

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/names"
)

// MaintenanceTimeOut bounds one maintenance Job: a prune of a large
// repository takes hours, a hung one must still end.
const MaintenanceTimeOut = 12 * time.Hour

// MaintenanceJob builds the Job that runs the given maintenance tasks
// (v1beta1.Maintenance*) of repo, in its namespace, as its run runID
// (created is when the run was decided: its lock deadline counts from it).
func MaintenanceJob(repo *v1beta1.Repository, tasks []string, runID string, created metav1.Time, opts Options) (*batchv1.Job, error) {
	if repo == nil || len(tasks) == 0 {
		return nil, fmt.Errorf("maintenance job: a repository and at least one task are required")
	}
	task, fn := builtin.MaintenanceTask(opts.Image)
	vars := commonVars(repo.Namespace, v1beta1.KindRepository, repo.Name, v1beta1.EmptyDirSettings{}, false, repo, opts)
	vars[VarPrometheusJobName] = names.PushgatewayJob(v1beta1.KindRepository, repo.Namespace, repo.Name)
	for _, t := range tasks {
		switch t {
		case v1beta1.MaintenanceUnlock, v1beta1.MaintenancePrune, v1beta1.MaintenanceCheck, v1beta1.MaintenanceRefresh:
			vars["MAINTAIN_"+strings.ToUpper(t)] = strconv.FormatBool(true)
		default:
			return nil, fmt.Errorf("maintenance job: unknown task %q", t)
		}
	}
	m := repo.Spec.Maintenance
	if m != nil && m.Check != nil {
		vars["MAINTAIN_READ_DATA_SUBSET"] = m.Check.ReadDataSubset
	}
	rt := v1beta1.RuntimeSettings{}
	if m != nil && m.Resources != nil {
		rt.Container = &v1beta1.ContainerRuntimeSettings{Resources: *m.Resources.DeepCopy()}
	}
	return repositoryJob(repo, names.MaintenanceJob(repo.Name, runID), runID, task, fn, vars, rt, MaintenanceTimeOut, created, opts)
}

// WipeTimeOut bounds the Job that deletes a repository: a large one has
// many files, a hung deletion must still end.
const WipeTimeOut = 6 * time.Hour

// WipeJob builds the Job that deletes repo's data at its backend (stow
// wipe), run when the Repository is deleted with wipeOut.
func WipeJob(repo *v1beta1.Repository, created metav1.Time, opts Options) (*batchv1.Job, error) {
	if repo == nil {
		return nil, fmt.Errorf("wipe job: a repository is required")
	}
	task, fn := builtin.WipeTask(opts.Image)
	vars := commonVars(repo.Namespace, v1beta1.KindRepository, repo.Name, v1beta1.EmptyDirSettings{}, false, repo, opts)
	rt := v1beta1.RuntimeSettings{}
	if m := repo.Spec.Maintenance; m != nil && m.Resources != nil {
		rt.Container = &v1beta1.ContainerRuntimeSettings{Resources: *m.Resources.DeepCopy()}
	}
	return repositoryJob(repo, names.WipeJob(repo.Name), "wipe", task, fn, vars, rt, WipeTimeOut, created, opts)
}

// repositoryJob builds a Job of Stow's own work on repo (maintenance, wipe):
// one step, in the Repository's namespace, owned by it.
func repositoryJob(repo *v1beta1.Repository, name, runID string, task *v1beta1.Task, fn *v1beta1.Function, vars map[string]string,
	rt v1beta1.RuntimeSettings, timeOut time.Duration, created metav1.Time, opts Options) (*batchv1.Job, error) {
	limit := &v1beta1.Duration{Duration: timeOut}
	in := jobInput{
		name:      name,
		namespace: repo.Namespace,
		owner:     v1beta1.OwnerRef(v1beta1.KindRepository, repo.Name, repo.UID),
		labels: map[string]string{
			v1beta1.LabelComponent:   v1beta1.ComponentMaintenance,
			v1beta1.LabelManagedBy:   v1beta1.ManagedByStow,
			v1beta1.LabelInvokerType: v1beta1.KindRepository,
			v1beta1.LabelInvokerName: names.LabelValue(repo.Name),
		},
		vars:        vars,
		task:        task,
		fns:         map[string]*v1beta1.Function{fn.Name: fn},
		repo:        repo,
		rt:          rt,
		timeOut:     limit,
		targetMount: v1beta1.DefaultMountPath,
		lockHost:    lockHost(string(repo.UID)+"/"+runID, 0, opts),
		contract: contract(identity.Identity{Namespace: repo.Namespace, InvokerKind: v1beta1.KindRepository, InvokerName: repo.Name,
			TargetKind: v1beta1.KindRepository, TargetName: repo.Name}, lockDeadline(created, limit, opts), opts),
	}
	job, err := buildJob(in, opts)
	if err != nil {
		return nil, err
	}
	// Finished Jobs of Stow's own work are not history the user asked to keep.
	job.Spec.TTLSecondsAfterFinished = ptr.To(int32(24 * 3600))
	return job, nil
}
