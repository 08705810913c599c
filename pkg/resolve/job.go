package resolve

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/interim"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/names"
)

// nobody is the uid and gid of backup pods (security.go).
const nobody = int64(65534)

// StepContainerName is the container of Task step i running Function fn:
// "<fn with dots replaced by dashes>-<i>", shortened to a valid name. i is
// the step index. (Hooks are not containers of the Job: pkg/controller/hookrun
// runs them, docs/hooks.md.)
func StepContainerName(fn string, i int) string {
	return names.LabelValue(fmt.Sprintf("%s-%d", strings.ReplaceAll(fn, ".", "-"), i))
}

// jobInput is what BackupJob and RestoreJobs have in common.
type jobInput struct {
	name, namespace string
	owner           metav1.OwnerReference
	labels          map[string]string
	vars            map[string]string // built-ins, before task.params
	taskParams      []v1beta1.Param
	task            *v1beta1.Task
	fns             map[string]*v1beta1.Function
	repo            *v1beta1.Repository
	rt              v1beta1.RuntimeSettings
	tmp             v1beta1.EmptyDirSettings
	timeOut         *v1beta1.Duration
	targetMount     string
	restore         bool
	// soleUser: the Repository serves this backup's configuration alone,
	// so its Job may apply retention in the backup step (fuseRetention).
	soleUser bool
	extraEnv []corev1.EnvVar
	// contract and lockHost are fixed by the operator (contract.go).
	contract jobenv.Contract
	lockHost string
}

// BackupJob builds the Job that runs BackupSession s of bc: the Task's
// steps as containers of one pod, with the target PVC mounted.
func BackupJob(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, opts Options) (*batchv1.Job, error) {
	if bc == nil || s == nil {
		return nil, fmt.Errorf("backup job: a BackupConfiguration and a BackupSession are required")
	}
	if repo == nil {
		return nil, fmt.Errorf("backupconfiguration %q: repository not given", bc.Name)
	}
	d := bc.DeepCopy()
	v1beta1.DefaultBackupConfiguration(d)
	labels := names.SessionLabels(d)
	for k, v := range labels {
		labels[k] = names.LabelValue(v) // a PVC name may be longer than a label value
	}
	labels[v1beta1.LabelBackupSession] = names.LabelValue(s.Name)
	in := jobInput{
		name:        names.BackupJob(s.Name),
		namespace:   s.Namespace,
		owner:       v1beta1.OwnerRef(v1beta1.KindBackupSession, s.Name, s.UID),
		labels:      labels,
		vars:        BackupVars(d, s, repo, opts),
		taskParams:  d.Spec.Task.Params,
		task:        task,
		fns:         fns,
		repo:        repo,
		rt:          d.Spec.RuntimeSettings,
		tmp:         d.Spec.TempDir,
		timeOut:     d.Spec.TimeOut,
		targetMount: v1beta1.DefaultMountPath,
		lockHost:    lockHost(string(s.UID), 0, opts),
		soleUser:    soleUser(repo, d),
	}
	id := identity.Identity{Namespace: s.Namespace, InvokerKind: v1beta1.KindBackupConfiguration, InvokerName: d.Name,
		TargetKind: v1beta1.KindPersistentVolumeClaim}
	if d.Spec.Target != nil {
		in.targetMount = v1beta1.TargetMountPath(d.Spec.Target.VolumeMounts)
		id.TargetName = d.Spec.Target.Ref.Name
	}
	in.contract = contract(id, lockDeadline(s.CreationTimestamp, d.Spec.TimeOut, opts), opts)
	job, err := buildJob(in, opts)
	if err != nil {
		return nil, err
	}
	if tpl := d.Spec.InterimVolumeTemplate; tpl != nil {
		if err := interim.Mount(&job.Spec.Template.Spec, interim.ClaimName(tpl, s.Name)); err != nil {
			return nil, fmt.Errorf("backupconfiguration %q: %v", bc.Name, err)
		}
	}
	return job, nil
}

// claimMounts is where the restore Job mounts each new PVC of
// t.volumeClaimTemplates, as Stash documents it: at the mountPath of the
// volumeMount named like the template (without its "-${POD_ORDINAL}" part).
// A template no volumeMount names goes to the target mount path (the first)
// or next to it, at <mount path>-<i>. The runner restores each snapshot path
// into the mount path it was backed up at or lies under.
func claimMounts(t *v1beta1.RestoreTarget, rsName string) ([]string, error) {
	byName := map[string]string{}
	for _, m := range t.VolumeMounts {
		byName[m.Name] = m.MountPath
	}
	first := v1beta1.TargetMountPath(t.VolumeMounts)
	seen := map[string]int{}
	out := make([]string, len(t.VolumeClaimTemplates))
	for i, tpl := range t.VolumeClaimTemplates {
		base := strings.TrimSuffix(strings.TrimSuffix(tpl.Name, "${POD_ORDINAL}"), "-")
		mp, ok := byName[tpl.Name]
		if !ok {
			mp, ok = byName[base]
		}
		switch {
		case ok:
		case i == 0:
			mp = first
		default:
			mp = fmt.Sprintf("%s-%d", first, i)
		}
		if j, dup := seen[filepath.Clean(mp)]; dup {
			return nil, fmt.Errorf("restoresession %q: volumeClaimTemplates %d and %d are both mounted at %s; give each its own target.volumeMounts entry, named like the template", rsName, j, i, mp)
		}
		seen[filepath.Clean(mp)] = i
		out[i] = mp
	}
	return out, nil
}

// RestoreJobs builds one Job per restore ordinal of rs. With
// target.volumeClaimTemplates it also returns the PVCs of every ordinal
// (${POD_ORDINAL} substituted), which the caller creates before the Jobs;
// otherwise it returns one Job for target.ref and no PVCs.
func RestoreJobs(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, resolved []jobenv.ResolvedSnapshot, opts Options) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
	if rs == nil {
		return nil, nil, fmt.Errorf("restore job: a RestoreSession is required")
	}
	if repo == nil {
		return nil, nil, fmt.Errorf("restoresession %q: repository not given", rs.Name)
	}
	d := rs.DeepCopy()
	v1beta1.DefaultRestoreSession(d)
	t := d.Spec.Target
	if t == nil {
		return nil, nil, fmt.Errorf("restoresession %q has no target", rs.Name)
	}
	if t.Ref.Name != "" && len(t.VolumeClaimTemplates) > 0 {
		// Defence for a session stored under an older schema: its Job
		// would restore into ref while the templates' PVCs stay empty.
		return nil, nil, fmt.Errorf("restoresession %q: target.ref.name and target.volumeClaimTemplates are both set: restore either into the existing PVC %s or into new PVCs from the templates", rs.Name, t.Ref.Name)
	}
	host := v1beta1.Host(t.Alias)
	rule := MatchRule(t.Rules, host)
	if rule == nil && len(t.Rules) > 0 {
		return nil, nil, fmt.Errorf("restoresession %q: no rule matches host %q", rs.Name, host)
	}
	// Every replica's Job and PVCs are built here, on every sync: a
	// session stored under an older schema (no maximum) or with a large
	// Task must not take the operator's memory with it.
	if errs := v1beta1.ValidateRestoreFanOut(&d.Spec, taskBytes(task, fns), field.NewPath("spec", "target", "replicas")); len(errs) > 0 {
		return nil, nil, fmt.Errorf("restoresession %q: %v", rs.Name, errs.ToAggregate())
	}
	if n := len(t.VolumeClaimTemplates); n > v1beta1.MaxVolumeClaimTemplates {
		return nil, nil, fmt.Errorf("restoresession %q: %d volumeClaimTemplates, at most %d", rs.Name, n, v1beta1.MaxVolumeClaimTemplates)
	}
	replicas := 1
	if len(t.VolumeClaimTemplates) > 0 && t.Replicas != nil && *t.Replicas > 1 {
		replicas = int(*t.Replicas)
	}
	in := restoreInput{rs: rs, d: d, repo: repo, task: task, fns: fns, resolved: resolved, rule: rule}
	var jobs []*batchv1.Job
	var pvcs []*corev1.PersistentVolumeClaim
	for ord := 0; ord < replicas; ord++ {
		job, claims, err := restoreJob(in, ord, opts)
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, job)
		pvcs = append(pvcs, claims...)
	}
	return jobs, pvcs, nil
}

// taskBytes is the size of task and of the Functions its steps run: each
// replica of a restore is built from a copy of them.
func taskBytes(task *v1beta1.Task, fns map[string]*v1beta1.Function) int {
	if task == nil {
		return 0
	}
	n := 0
	if raw, err := json.Marshal(task.Spec); err == nil {
		n += len(raw)
	}
	for i, step := range task.Spec.Steps {
		if i >= v1beta1.MaxTaskSteps {
			break // resolveTask refuses the Task
		}
		if fn := fns[step.Name]; fn != nil {
			if raw, err := json.Marshal(fn.Spec); err == nil {
				n += len(raw)
			}
		}
	}
	return n
}

// restoreInput is what every ordinal's Job of one RestoreSession is built
// from; d is the session defaulted, rs as the user wrote it.
type restoreInput struct {
	rs, d    *v1beta1.RestoreSession
	repo     *v1beta1.Repository
	task     *v1beta1.Task
	fns      map[string]*v1beta1.Function
	resolved []jobenv.ResolvedSnapshot
	rule     *v1beta1.Rule
}

// restoreJob builds the Job of restore ordinal ord and the PVCs it restores
// into (none without volumeClaimTemplates). Each ordinal is its own host, so
// its claims, labels, lock and mounts are its own.
func restoreJob(r restoreInput, ord int, opts Options) (*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
	rs, d := r.rs, r.d
	t := d.Spec.Target
	vars := RestoreVars(d, r.repo, r.rule, opts)
	labels := restoreLabels(d)
	labels[v1beta1.LabelRestoreSession] = names.LabelValue(rs.Name)
	claims, err := ordinalClaims(rs, t, ord)
	if err != nil {
		return nil, nil, err
	}
	if len(claims) > 0 {
		if t.Ref.Name == "" {
			vars[VarTargetName] = claims[0].Name
		}
		labels[v1beta1.LabelPodOrdinal] = strconv.Itoa(ord)
		labels[v1beta1.LabelTargetName] = names.LabelValue(vars[VarTargetName])
	}
	in := jobInput{
		name:        names.RestoreJob(rs.Name, ord),
		namespace:   rs.Namespace,
		owner:       v1beta1.OwnerRef(v1beta1.KindRestoreSession, rs.Name, rs.UID),
		labels:      labels,
		vars:        vars,
		taskParams:  d.Spec.Task.Params,
		task:        r.task,
		fns:         r.fns,
		repo:        r.repo,
		rt:          d.Spec.RuntimeSettings,
		tmp:         d.Spec.TempDir,
		timeOut:     d.Spec.TimeOut,
		targetMount: v1beta1.TargetMountPath(t.VolumeMounts),
		restore:     true,
		lockHost:    lockHost(string(rs.UID), ord, opts),
		contract: contract(identity.Identity{Namespace: rs.Namespace, InvokerKind: v1beta1.KindRestoreSession, InvokerName: rs.Name,
			TargetKind: v1beta1.KindPersistentVolumeClaim, TargetName: vars[VarTargetName]},
			lockDeadline(rs.CreationTimestamp, d.Spec.TimeOut, opts), opts),
	}
	if len(claims) == 0 && !ruleSelects(r.rule) {
		in.contract.Resolved = r.resolved
	}
	if d.Spec.RestoreAsOf != nil {
		in.contract.AsOf = d.Spec.RestoreAsOf.Time
	}
	var mounts []string
	if len(claims) > 0 {
		in.extraEnv = []corev1.EnvVar{{Name: VarPodOrdinal, Value: strconv.Itoa(ord)}}
		if mounts, err = claimMounts(t, rs.Name); err != nil {
			return nil, nil, err
		}
		in.targetMount, in.contract.ExtraMounts = mounts[0], mounts[1:]
	}
	job, err := buildJob(in, opts)
	if err != nil {
		return nil, nil, err
	}
	if tpl := d.Spec.InterimVolumeTemplate; tpl != nil {
		if err := interim.Mount(&job.Spec.Template.Spec, interim.ClaimName(tpl, rs.Name)); err != nil {
			return nil, nil, fmt.Errorf("restoresession %q: %v", rs.Name, err)
		}
	}
	if err := mountExtraClaims(job, claims, mounts); err != nil {
		return nil, nil, fmt.Errorf("restoresession %q: %v", rs.Name, err)
	}
	return job, claims, nil
}

// ordinalClaims are the PVCs of restore ordinal ord: t's
// volumeClaimTemplates with ${POD_ORDINAL} substituted, marked as restored
// by rs so the controller adopts only its own.
func ordinalClaims(rs *v1beta1.RestoreSession, t *v1beta1.RestoreTarget, ord int) ([]*corev1.PersistentVolumeClaim, error) {
	ordVars := map[string]string{VarPodOrdinal: strconv.Itoa(ord)}
	var claims []*corev1.PersistentVolumeClaim
	for i := range t.VolumeClaimTemplates {
		var pvc corev1.PersistentVolumeClaim
		if err := substituteInto(&t.VolumeClaimTemplates[i], &pvc, ordVars, fmt.Sprintf("restoresession %q volumeClaimTemplate %d", rs.Name, i)); err != nil {
			return nil, err
		}
		pvc.Namespace = rs.Namespace
		pvc.ResourceVersion, pvc.UID = "", ""
		if pvc.Annotations == nil {
			pvc.Annotations = map[string]string{}
		}
		pvc.Annotations[v1beta1.AnnotationRestoredBy] = string(rs.UID)
		if pvc.Name == "" {
			return nil, fmt.Errorf("restoresession %q: volumeClaimTemplate %d has no name", rs.Name, i)
		}
		claims = append(claims, &pvc)
	}
	return claims, nil
}

// mountExtraClaims mounts every claim but the first (the Task's target
// volume, named by TARGET_NAME) at its own mount path from claimMounts.
func mountExtraClaims(job *batchv1.Job, claims []*corev1.PersistentVolumeClaim, mounts []string) error {
	for i, c := range claims[min(1, len(claims)):] {
		volName := fmt.Sprintf("%s-%d", v1beta1.TargetVolumeName, i+1)
		job.Spec.Template.Spec.Volumes = append(job.Spec.Template.Spec.Volumes, corev1.Volume{
			Name:         volName,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}},
		})
		if err := mountAll(&job.Spec.Template.Spec, corev1.VolumeMount{Name: volName, MountPath: mounts[i+1]}); err != nil {
			return fmt.Errorf("volumeClaimTemplate %d (PVC %s): %v", i+1, c.Name, err)
		}
	}
	return nil
}

func restoreLabels(rs *v1beta1.RestoreSession) map[string]string {
	l := map[string]string{
		v1beta1.LabelComponent:   v1beta1.ComponentRestore,
		v1beta1.LabelManagedBy:   v1beta1.ManagedByStow,
		v1beta1.LabelInvokerType: v1beta1.KindRestoreSession,
		v1beta1.LabelInvokerName: names.LabelValue(rs.Name),
	}
	if t := rs.Spec.Target; t != nil {
		ns := t.Ref.Namespace
		if ns == "" {
			ns = rs.Namespace
		}
		l[v1beta1.LabelTargetKind] = v1beta1.KindPersistentVolumeClaim
		l[v1beta1.LabelTargetName] = names.LabelValue(t.Ref.Name)
		l[v1beta1.LabelTargetNamespace] = ns
	}
	return l
}

// buildJob turns in into the Job: one container per Task step, the last the
// main container, so the steps run in order and the Job ends with the last.
func buildJob(in jobInput, opts Options) (*batchv1.Job, error) {
	// Validation refuses these; a spec that got past it (an older schema,
	// a stale status) must not have its target under Stow's own volumes,
	// where a Function's scratch data would land in it or hide it.
	for _, mp := range append([]string{in.targetMount}, in.contract.ExtraMounts...) {
		if r := v1beta1.ReservedMountPath(mp); r != "" {
			return nil, fmt.Errorf("%s %q: target mount path %s is at or under %s, where Stow mounts its own volume (spec.target.volumeMounts)", strings.ToLower(in.vars[VarInvokerKind]), in.vars[VarInvokerName], mp, r)
		}
	}
	containers, task, err := buildContainers(in)
	if err != nil {
		return nil, err
	}
	if err := paramsChooseNothing(in, containers, jobVolumes(in, task)); err != nil {
		return nil, err
	}
	exclusiveFrom := ""
	if !in.restore {
		exclusiveFrom = exclusiveStep(task)
		if in.soleUser {
			if fused, ok := fuseRetention(task, containers); ok {
				containers, exclusiveFrom = []corev1.Container{fused}, fused.Name
			}
		}
	}
	pod, podMeta := podSpec(in, containers, jobVolumes(in, task), opts)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            in.name,
			Namespace:       in.namespace,
			Labels:          copyMap(in.labels),
			OwnerReferences: []metav1.OwnerReference{in.owner},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template:     corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: pod},
		},
	}
	if exclusiveFrom != "" {
		job.Annotations = map[string]string{v1beta1.AnnotationExclusiveFrom: exclusiveFrom}
	}
	if in.timeOut != nil && in.timeOut.Duration > 0 {
		secs := int64(in.timeOut.Duration.Seconds())
		if secs < 1 {
			secs = 1
		}
		job.Spec.ActiveDeadlineSeconds = &secs
	}
	return job, nil
}

// buildContainers resolves the Task and makes one container per step.
func buildContainers(in jobInput) ([]corev1.Container, *v1beta1.Task, error) {
	opVars, task, err := resolveTask(in)
	if err != nil {
		return nil, nil, err
	}
	var containers []corev1.Container
	for i, step := range task.Spec.Steps {
		c, err := stepContainer(in, opVars, i, step)
		if err != nil {
			return nil, nil, err
		}
		containers = append(containers, c)
	}
	return containers, task, nil
}

// TaskParamError is a spec.task.params entry that decides what the Job's
// pod mounts or reads (paramsChooseNothing).
type TaskParamError struct {
	Index int
	Name  string
	// What is the part of the pod the parameter decides.
	What string
}

func (e *TaskParamError) Error() string {
	return fmt.Sprintf("spec.task.params[%d] (%s) decides %s; a Task parameter may fill in the Task's values but not choose a volume, "+
		"a Secret, a ConfigMap, a mount or an environment variable name of the Job's pod (docs/security.md)", e.Index, e.Name, e.What)
}

// paramsChooseNothing refuses spec.task.params that decide which volumes
// the pod has, what each container mounts where, which Secrets and
// ConfigMaps its environment comes from or the names of its variables. A
// Task or Function may put a parameter anywhere (claimName: ${pvc},
// secretName: ${secret}, a volumeMount's name), and its author was checked
// at admission for the template, not for the value a configuration's writer
// gives: that value could name a Secret the writer may not read, another
// PVC than the target, or mount a Secret volume at the target's path. Each
// parameter is given another value; if the pod's inputs change, it decides
// them. The Task's own parameters (outputDir, args, ...) only fill in values.
func paramsChooseNothing(in jobInput, containers []corev1.Container, volumes []corev1.Volume) error {
	want := podInputs(containers, volumes)
	for i, p := range in.taskParams {
		alt := in
		alt.taskParams = append([]v1beta1.Param(nil), in.taskParams...)
		alt.taskParams[i].Value = p.Value + "-stow-probe"
		cs, task, err := buildContainers(alt)
		if err != nil {
			// The other value does not even resolve (a number field, say):
			// leave the parameter out instead.
			alt.taskParams = append(append([]v1beta1.Param(nil), in.taskParams[:i]...), in.taskParams[i+1:]...)
			if cs, task, err = buildContainers(alt); err != nil {
				continue
			}
		}
		got := podInputs(cs, jobVolumes(alt, task))
		if what := firstDifference(want, got); what != "" {
			return &TaskParamError{Index: i, Name: p.Name, What: what}
		}
	}
	return nil
}

// podInputs describes what a pod's containers get beyond values: each
// volume's source, each mount (container, path, subPath, volume source),
// each variable's name and where its value comes from, each envFrom
// source. Sorted.
func podInputs(containers []corev1.Container, volumes []corev1.Volume) []string {
	source := map[string]string{}
	var out []string
	for _, v := range volumes {
		b, _ := json.Marshal(v.VolumeSource)
		source[v.Name] = string(b)
		out = append(out, "a volume "+string(b))
	}
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			src, ok := source[m.Name]
			if !ok {
				src = fmt.Sprintf("(no volume %q)", m.Name)
			}
			out = append(out, fmt.Sprintf("what container %s mounts at %s (subPath %q%s, readOnly %v): %s", c.Name, m.MountPath, m.SubPath, subPathExpr(m), m.ReadOnly, src))
		}
		for _, e := range c.Env {
			out = append(out, fmt.Sprintf("variable %s of container %s", e.Name, c.Name))
			if e.ValueFrom != nil {
				b, _ := json.Marshal(e.ValueFrom)
				out = append(out, fmt.Sprintf("where variable %s of container %s comes from: %s", e.Name, c.Name, b))
			}
		}
		for _, e := range c.EnvFrom {
			b, _ := json.Marshal(e)
			out = append(out, fmt.Sprintf("the variables of container %s from %s", c.Name, b))
		}
	}
	sort.Strings(out)
	return out
}

func subPathExpr(m corev1.VolumeMount) string {
	if m.SubPathExpr == "" {
		return ""
	}
	return fmt.Sprintf(", subPathExpr %q", m.SubPathExpr)
}

// firstDifference names the first entry of want missing from got, or of got
// missing from want; "" when they are equal.
func firstDifference(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	for _, pair := range [][2][]string{{want, got}, {got, want}} {
		for _, w := range pair[0] {
			if _, found := slices.BinarySearch(pair[1], w); !found {
				return w
			}
		}
	}
	return "how many volumes, mounts or variables the pod has"
}

// resolveTask checks what every Job needs and substitutes the operator
// variables and spec.task.params (which may not name a computed variable:
// ValidateTaskParams) into the Task, so a bad Task is rejected before any
// container is built. It returns the
// variables too: the steps' Functions are substituted with them.
func resolveTask(in jobInput) (map[string]string, *v1beta1.Task, error) {
	if in.task == nil {
		return nil, nil, fmt.Errorf("%s %q: task not given", strings.ToLower(in.vars[VarInvokerKind]), in.vars[VarInvokerName])
	}
	if len(in.task.Spec.Steps) == 0 {
		return nil, nil, fmt.Errorf("task %q has no steps", in.task.Name)
	}
	if n := len(in.task.Spec.Steps); n > v1beta1.MaxTaskSteps {
		return nil, nil, fmt.Errorf("task %q has %d steps, at most %d", in.task.Name, n, v1beta1.MaxTaskSteps)
	}
	if n := len(in.taskParams); n > v1beta1.MaxParams {
		return nil, nil, fmt.Errorf("%s %q: %d task params, at most %d", strings.ToLower(in.vars[VarInvokerKind]), in.vars[VarInvokerName], n, v1beta1.MaxParams)
	}
	if in.repo.Spec.Backend.StorageSecretName == "" {
		return nil, nil, fmt.Errorf("repository %q has no storageSecretName", in.repo.Name)
	}
	if errs := ValidateInvoker(v1beta1.TaskRef{Params: in.taskParams}, in.rt); len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s %q: %v", strings.ToLower(in.vars[VarInvokerKind]), in.vars[VarInvokerName], errs.ToAggregate())
	}
	opVars := make(map[string]string, len(in.vars)+len(in.taskParams))
	for k, v := range in.vars {
		opVars[k] = v
	}
	for _, p := range in.taskParams {
		opVars[p.Name] = p.Value
	}
	var task v1beta1.Task
	if err := substituteInto(in.task, &task, opVars, fmt.Sprintf("task %q", in.task.Name)); err != nil {
		return nil, nil, err
	}
	return opVars, &task, nil
}

// stepContainer is the container of step i: its Function substituted with
// the step's inputs (step params < operator variables < ADDON_IMAGE), given
// the repository's credentials and the scratch and local-backend mounts
// every step may need, then the Function's and the invoker's settings.
func stepContainer(in jobInput, opVars map[string]string, i int, step v1beta1.FunctionRef) (corev1.Container, error) {
	fn := in.fns[step.Name]
	if fn == nil {
		return corev1.Container{}, fmt.Errorf("function %q not found (step %d of task %q)", step.Name, i, in.task.Name)
	}
	inputs := make(map[string]string, len(opVars)+len(step.Params)+1)
	for _, p := range step.Params {
		inputs[p.Name] = p.Value
	}
	for k, v := range opVars {
		inputs[k] = v
	}
	inputs[VarAddonImage] = Substitute(fn.Spec.Image, opVars)
	var spec v1beta1.FunctionSpec
	if err := substituteInto(&fn.Spec, &spec, inputs, fmt.Sprintf("function %q", fn.Name)); err != nil {
		return corev1.Container{}, err
	}
	if spec.Image == "" {
		return corev1.Container{}, fmt.Errorf("function %q has no image", fn.Name)
	}
	c := corev1.Container{
		Name:                     StepContainerName(fn.Name, i),
		Image:                    spec.Image,
		Command:                  spec.Command,
		Args:                     spec.Args,
		WorkingDir:               spec.WorkingDir,
		Ports:                    spec.Ports,
		VolumeMounts:             spec.VolumeMounts,
		VolumeDevices:            spec.VolumeDevices,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: in.repo.Spec.Backend.StorageSecretName},
		}}},
	}
	if err := upsertMount(&c, corev1.VolumeMount{Name: v1beta1.TmpDirVolumeName, MountPath: v1beta1.TmpDirMountPath}); err != nil {
		return corev1.Container{}, fmt.Errorf("function %q (step %d of task %q): %v", fn.Name, i, in.task.Name, err)
	}
	if l := in.repo.Spec.Backend.Local; l != nil {
		if err := upsertMount(&c, corev1.VolumeMount{Name: v1beta1.LocalBackendVolumeName, MountPath: l.MountPath, SubPath: l.SubPath}); err != nil {
			return corev1.Container{}, fmt.Errorf("function %q (step %d of task %q) and the local Repository %s/%s: %v", fn.Name, i, in.task.Name, in.repo.Namespace, in.repo.Name, err)
		}
	}
	applyContainerSettings(&c, spec.RuntimeSettings)
	applyContainerSettings(&c, in.rt.Container)
	for _, e := range in.extraEnv { // Stow's own, after the settings
		upsertEnv(&c, e)
	}
	return c, nil
}

// jobVolumes adds to the Task's volumes the ones stepContainer mounts
// (scratch space, the local backend), so those names always resolve.
func jobVolumes(in jobInput, task *v1beta1.Task) []corev1.Volume {
	volumes := task.Spec.Volumes
	tmpVol := corev1.Volume{Name: v1beta1.TmpDirVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: in.tmp.Medium, SizeLimit: in.tmp.SizeLimit,
	}}}
	volumes = upsertVolume(volumes, tmpVol)
	if l := in.repo.Spec.Backend.Local; l != nil {
		volumes = upsertVolume(volumes, corev1.Volume{Name: v1beta1.LocalBackendVolumeName, VolumeSource: *l.VolumeSource.DeepCopy()})
	}
	return volumes
}

// podSpec is the Job's pod: the steps but the last as init containers so
// they run one after another, then the pod settings, the hardening and the
// contract in that order, each able to rely on what the one before set.
func podSpec(in jobInput, containers []corev1.Container, volumes []corev1.Volume, opts Options) (corev1.PodSpec, metav1.ObjectMeta) {
	pod := corev1.PodSpec{
		InitContainers:               containers[:len(containers)-1],
		Containers:                   containers[len(containers)-1:],
		Volumes:                      volumes,
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		ImagePullSecrets:             mergePullSecrets(opts.ImagePullSecrets, nil),
	}
	if len(pod.InitContainers) == 0 {
		pod.InitContainers = nil
	}
	// No fsGroup by default: it would make the kubelet chown/chmod the
	// user's PVC, so a backup would modify its source. Files the non-root
	// user cannot read fail the backup with their names; set runAsUser (or
	// fsGroup for a local backend volume) in runtimeSettings.
	pod.SecurityContext = defaultPodSecurity()
	podMeta := metav1.ObjectMeta{Labels: copyMap(in.labels)}
	applyPodSettings(&pod, &podMeta, in.rt.Pod, opts)
	harden(&pod, in.restore, in.rt.Pod != nil && in.rt.Pod.SecurityContext != nil)
	applyContract(&pod, &podMeta, in.contract, in.lockHost)
	return pod, podMeta
}

// exclusiveStep is the container of the backup's retention step (forget,
// check): from that step on the Job needs the repository alone. The gate
// (pkg/controller/executor) admits no other Job on the location once it
// has started.
func exclusiveStep(task *v1beta1.Task) string {
	for i, step := range task.Spec.Steps {
		if step.Name == v1beta1.FunctionUpdateStatus {
			return StepContainerName(step.Name, i)
		}
	}
	return ""
}

// soleUser tells whether repo's status names bc as its only user: then no
// other configuration's backup shares it, and the Job may hold it alone
// from its start at no cost to anyone (fuseRetention). Without references
// (not computed yet) the answer is no.
func soleUser(repo *v1beta1.Repository, bc *v1beta1.BackupConfiguration) bool {
	refs := repo.Status.References
	return len(refs) == 1 && refs[0].Kind == v1beta1.KindBackupConfiguration && refs[0].Name == bc.Name && refs[0].Namespace == bc.Namespace
}

// fuseRetention makes the built-in backup's two steps (backup-pvc, then
// update-status applying retention) one container: backup-pvc with
// --apply-retention and update-status's --retention-* flags. A second
// container costs its start and the kubelet's notice of the first one's
// exit, most of a second (docs/performance.md). It declines (ok false) for
// any other Task, and when update-status would also check the repository.
// The one container is then the exclusive part: its forget needs the
// repository alone, and the gate cannot see where in the container it is.
func fuseRetention(task *v1beta1.Task, containers []corev1.Container) (corev1.Container, bool) {
	steps := task.Spec.Steps
	if len(steps) != 2 || len(containers) != 2 || steps[0].Name != v1beta1.FunctionPVCBackup || steps[1].Name != v1beta1.FunctionUpdateStatus {
		return corev1.Container{}, false
	}
	backup, status := containers[0], containers[1]
	if len(backup.Args) == 0 || backup.Args[0] != "backup-pvc" || len(status.Args) == 0 || status.Args[0] != "update-status" {
		return corev1.Container{}, false
	}
	var retention []string
	for _, a := range status.Args[1:] {
		switch {
		case strings.HasPrefix(a, "--integrity-check") && a != "--integrity-check=false":
			return corev1.Container{}, false
		case strings.HasPrefix(a, "--retention-"):
			retention = append(retention, a)
		}
	}
	fused := *backup.DeepCopy()
	fused.Args = append(append(fused.Args, "--apply-retention=true"), retention...)
	return fused, true
}

// applyContainerSettings applies runtime settings to c; later calls win.
func applyContainerSettings(c *corev1.Container, s *v1beta1.ContainerRuntimeSettings) {
	if s == nil {
		return
	}
	if len(s.Resources.Limits) > 0 || len(s.Resources.Requests) > 0 || len(s.Resources.Claims) > 0 {
		c.Resources = *s.Resources.DeepCopy()
	}
	if s.LivenessProbe != nil {
		c.LivenessProbe = s.LivenessProbe.DeepCopy()
	}
	if s.ReadinessProbe != nil {
		c.ReadinessProbe = s.ReadinessProbe.DeepCopy()
	}
	if s.Lifecycle != nil {
		c.Lifecycle = s.Lifecycle.DeepCopy()
	}
	if s.SecurityContext != nil {
		c.SecurityContext = s.SecurityContext.DeepCopy()
	}
	for _, e := range s.Env {
		upsertEnv(c, *e.DeepCopy())
	}
	for _, e := range s.EnvFrom {
		c.EnvFrom = append(c.EnvFrom, *e.DeepCopy())
	}
	if s.Nice != nil && s.Nice.Adjustment != nil {
		upsertEnv(c, corev1.EnvVar{Name: "NICE_ADJUSTMENT", Value: strconv.Itoa(int(*s.Nice.Adjustment))})
	}
	if s.IONice != nil {
		if s.IONice.Class != nil {
			upsertEnv(c, corev1.EnvVar{Name: "IONICE_CLASS", Value: strconv.Itoa(int(*s.IONice.Class))})
		}
		if s.IONice.ClassData != nil {
			upsertEnv(c, corev1.EnvVar{Name: "IONICE_CLASS_DATA", Value: strconv.Itoa(int(*s.IONice.ClassData))})
		}
	}
}

// ApplyPodSettings applies pod runtime settings to a pod spec and its
// metadata. A user securityContext replaces the default as a whole, a user
// automountServiceAccountToken replaces Stow's false, image pull secrets
// are merged. The trigger CronJob uses it too.
func ApplyPodSettings(pod *corev1.PodSpec, meta *metav1.ObjectMeta, s *v1beta1.PodRuntimeSettings, opts Options) {
	applyPodSettings(pod, meta, s, opts)
}

func applyPodSettings(pod *corev1.PodSpec, meta *metav1.ObjectMeta, s *v1beta1.PodRuntimeSettings, opts Options) {
	pod.ImagePullSecrets = mergePullSecrets(opts.ImagePullSecrets, nil)
	if s == nil {
		return
	}
	s = s.DeepCopy()
	for k, v := range s.PodLabels {
		if meta.Labels == nil {
			meta.Labels = map[string]string{}
		}
		if _, ours := meta.Labels[k]; !ours { // Stow's selector labels win
			meta.Labels[k] = v
		}
	}
	if len(s.PodAnnotations) > 0 {
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		for k, v := range s.PodAnnotations {
			meta.Annotations[k] = v
		}
	}
	pod.NodeSelector = s.NodeSelector
	if s.ServiceAccountName != "" {
		pod.ServiceAccountName = s.ServiceAccountName
	}
	if s.AutomountServiceAccountToken != nil {
		pod.AutomountServiceAccountToken = s.AutomountServiceAccountToken
	}
	pod.NodeName = s.NodeName
	if s.SecurityContext != nil {
		pod.SecurityContext = s.SecurityContext
	}
	pod.ImagePullSecrets = mergePullSecrets(opts.ImagePullSecrets, s.ImagePullSecrets)
	pod.Affinity = s.Affinity
	pod.SchedulerName = s.SchedulerName
	pod.Tolerations = s.Tolerations
	pod.PriorityClassName = s.PriorityClassName
	pod.Priority = s.Priority
	pod.RuntimeClassName = s.RuntimeClassName
	pod.EnableServiceLinks = s.EnableServiceLinks
	pod.TopologySpreadConstraints = s.TopologySpreadConstraints
}

func mergePullSecrets(a, b []corev1.LocalObjectReference) []corev1.LocalObjectReference {
	var out []corev1.LocalObjectReference
	seen := map[string]bool{}
	for _, s := range append(append([]corev1.LocalObjectReference(nil), a...), b...) {
		if s.Name != "" && !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	return out
}

// upsertMount adds m to c, replacing a mount of its volume and subPath. A
// mount of another volume at m's path is an error, not replaced: it is the
// target's, or a Function's, and the step would read or write m's volume in
// its place (a backup of Stow's scratch space that succeeds).
func upsertMount(c *corev1.Container, m corev1.VolumeMount) error {
	for _, o := range c.VolumeMounts {
		if path.Clean(o.MountPath) == path.Clean(m.MountPath) && (o.Name != m.Name || o.SubPath != m.SubPath) {
			return fmt.Errorf("container %s mounts volume %q at %s, where Stow mounts volume %q: mount it elsewhere", c.Name, o.Name, o.MountPath, m.Name)
		}
	}
	c.VolumeMounts = upsert(c.VolumeMounts, m, func(o corev1.VolumeMount) bool {
		return o.Name == m.Name && o.SubPath == m.SubPath
	})
	return nil
}

func mountAll(p *corev1.PodSpec, m corev1.VolumeMount) error {
	for _, cs := range [][]corev1.Container{p.InitContainers, p.Containers} {
		for i := range cs {
			if err := upsertMount(&cs[i], m); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsertEnv sets e in c, replacing a variable of its name.
func upsertEnv(c *corev1.Container, e corev1.EnvVar) {
	c.Env = upsert(c.Env, e, func(o corev1.EnvVar) bool { return o.Name == e.Name })
}

// upsertVolume adds v to vs, replacing a volume of its name.
func upsertVolume(vs []corev1.Volume, v corev1.Volume) []corev1.Volume {
	return upsert(vs, v, func(o corev1.Volume) bool { return o.Name == v.Name })
}

// upsert replaces the first element of list that v replaces, or appends v.
func upsert[T any](list []T, v T, replaces func(T) bool) []T {
	for i := range list {
		if replaces(list[i]) {
			list[i] = v
			return list
		}
	}
	return append(list, v)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
