package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/podpolicy"
	"github.com/stowhq/stow/pkg/resolve"
	"github.com/stowhq/stow/pkg/restic"
)

// sync reconciles one BackupConfiguration; it is idempotent and safe to call
// for any key at any time.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	if ns, ok := sharedTriggerNamespace(key); ok {
		return 0, c.releaseSharedTrigger(ctx, ns, "")
	}
	cached, found, err := internal.Lookup(key, func(ns, name string) (*v1beta1.BackupConfiguration, error) {
		return c.bcs.BackupConfigurations(ns).Get(name)
	})
	if !found {
		if err == nil {
			c.secretRetry.Forget(key)
			c.writes.Forget(key)
			err = c.gone(ctx, key)
		}
		return 0, err
	}
	if c.writes.Stale(key, cached.ResourceVersion) {
		return internal.StaleRequeue, nil
	}
	ns := cached.Namespace
	bc := cached.DeepCopy()
	if bc.DeletionTimestamp != nil {
		return 0, c.finalize(ctx, bc)
	}
	if c.needsFinalizer(bc) && internal.AddFinalizer(bc, v1beta1.Finalizer) {
		updated, err := c.stow.StowV1beta1().BackupConfigurations(ns).Patch(ctx, bc.Name, types.MergePatchType, internal.FinalizerPatch(bc), metav1.PatchOptions{})
		if err != nil {
			return 0, fmt.Errorf("add finalizer to backupconfiguration %s: %v", key, err)
		}
		c.writes.Replaced(key, cached.ResourceVersion)
		bc = updated
	}
	return c.reconcile(ctx, bc)
}

// needsFinalizer tells whether bc has something to clean up that neither
// the garbage collector nor gone can be trusted with: a Pushgateway group,
// which exists once a session of bc has run. Until then bc goes without
// Stow's finalizer: its CronJob and its own trigger identity are owned by it
// and go with it, and the namespace's shared trigger identity is released
// by gone, or by the sweep at start (onOwned). A finalizer costs a write
// per configuration, a quarter of what a new configuration cost the API
// server (docs/performance.md).
func (c *Controller) needsFinalizer(bc *v1beta1.BackupConfiguration) bool {
	return len(c.sessionsOf(bc)) > 0
}

// gone cleans up after a configuration deleted without Stow's finalizer
// (needsFinalizer): the namespace's shared trigger identity, when no
// configuration uses it any more, and the Pushgateway group in case a
// session ran after bc's last reconcile (deleting an absent group is a
// no-op; a Pushgateway that is down is only logged, there is no object
// left to put an Event on).
func (c *Controller) gone(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key of ours
	}
	if err := c.releaseSharedTrigger(ctx, ns, ""); err != nil {
		return err
	}
	if err := c.pusher.DeleteInvokerGroup(ctx, v1beta1.KindBackupConfiguration, ns, name); err != nil {
		klog.InfoS("could not delete the Pushgateway group of a deleted BackupConfiguration", "backupconfiguration", key, "err", err)
	}
	return nil
}

// finalize removes what Stow created for bc, then the finalizer.
func (c *Controller) finalize(ctx context.Context, bc *v1beta1.BackupConfiguration) error {
	if !internal.HasFinalizer(bc, v1beta1.Finalizer) {
		return nil
	}
	if err := c.deleteOwned(ctx, bc, true); err != nil {
		c.event(bc, corev1.EventTypeWarning, internal.ReasonCleanupFailed, err.Error())
		return err
	}
	if err := c.releaseSharedTrigger(ctx, bc.Namespace, bc.UID); err != nil {
		c.event(bc, corev1.EventTypeWarning, internal.ReasonCleanupFailed, err.Error())
		return err
	}
	// A Pushgateway that is down must not keep the object forever: warn and go on.
	if err := c.pusher.DeleteInvokerGroup(ctx, v1beta1.KindBackupConfiguration, bc.Namespace, bc.Name); err != nil {
		c.event(bc, corev1.EventTypeWarning, "MetricsCleanupFailed", "could not delete the Pushgateway group: "+err.Error())
	}
	internal.RemoveFinalizer(bc, v1beta1.Finalizer)
	client := c.stow.StowV1beta1().BackupConfigurations(bc.Namespace)
	if err := internal.PatchFinalizers(bc, func(pt types.PatchType, data []byte) error {
		_, err := client.Patch(ctx, bc.Name, pt, data, metav1.PatchOptions{})
		return err
	}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer of backupconfiguration %s/%s: %v", bc.Namespace, bc.Name, err)
	}
	return nil
}

// deleteOwned deletes the CronJob (when withCronJob) and the trigger RBAC
// objects of bc's own identity, but only those bc controls. It looks in the
// caches of Stow's objects, so a configuration without them costs no request;
// what a lagging cache misses, the garbage collector removes through the
// owner references.
func (c *Controller) deleteOwned(ctx context.Context, bc *v1beta1.BackupConfiguration, withCronJob bool) error {
	name := names.TriggerServiceAccount(bc.Name)
	ns := bc.Namespace
	bg := metav1.DeletePropagationBackground
	type deleter struct {
		kind string
		name string
		get  func() (metav1.Object, error)
		del  func() error
	}
	ds := []deleter{
		{"serviceaccount", name, func() (metav1.Object, error) { return c.sas.ServiceAccounts(ns).Get(name) },
			func() error { return c.kube.CoreV1().ServiceAccounts(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
		{"role", name, func() (metav1.Object, error) { return c.roles.Roles(ns).Get(name) },
			func() error { return c.kube.RbacV1().Roles(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
		{"rolebinding", name, func() (metav1.Object, error) { return c.bindings.RoleBindings(ns).Get(name) },
			func() error { return c.kube.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
	}
	if withCronJob {
		cj := names.CronJob(bc.Name)
		ds = append([]deleter{{"cronjob", cj, func() (metav1.Object, error) { return c.cronJobs.CronJobs(ns).Get(cj) },
			func() error {
				return c.kube.BatchV1().CronJobs(ns).Delete(ctx, cj, metav1.DeleteOptions{PropagationPolicy: &bg})
			}}}, ds...)
	}
	for _, d := range ds {
		obj, err := d.get()
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s %s/%s: %v", d.kind, ns, d.name, err)
		}
		if !internal.IsControlledBy(obj, bc.UID) {
			continue
		}
		if err := d.del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s/%s: %v", d.kind, ns, d.name, err)
		}
	}
	return nil
}

// check is the outcome of one prerequisite.
type check struct {
	cond   v1beta1.Condition
	ok     bool
	reason string // event reason when not ok
}

func cond(typ string, st v1beta1.ConditionStatus, reason, msg string) v1beta1.Condition {
	return v1beta1.Condition{Type: typ, Status: st, Reason: reason, Message: msg}
}

// reconcile evaluates bc's prerequisites, ensures the CronJob and RBAC, and
// writes the status. It returns when to look again (a Secret to recheck, a
// target to release).
func (c *Controller) reconcile(ctx context.Context, bc *v1beta1.BackupConfiguration) (time.Duration, error) {
	d := bc.DeepCopy()
	v1beta1.DefaultBackupConfiguration(d)
	schedule := v1beta1.ResolveSchedule(bc.Namespace, bc.Name, bc.Spec.Schedule)

	checks := c.evaluate(ctx, d)
	ready := true
	var notReady string
	for _, ch := range checks {
		if !ch.ok {
			ready = false
			if notReady == "" {
				notReady = ch.cond.Message
			}
		}
	}

	// The CronJob is suspended while the configuration is paused, while a
	// restore has paused it, and whenever a backup could not succeed
	// (Stash kept firing sessions for a deleted PVC).
	var suspendWhy string
	switch pausing := c.pausingRestores(bc); {
	case bc.Spec.Paused:
		suspendWhy = "spec.paused is true"
	case len(pausing) > 0:
		suspendWhy = "paused while RestoreSession " + strings.Join(pausing, ", ") + " runs"
	case !ready:
		suspendWhy = "not ready: " + notReady
	}

	var ensureErr error
	var cronCond v1beta1.Condition
	var created string // the CronJob this reconcile created, if any
	if scheduleInvalid(d) {
		// A CronJob cannot carry an invalid schedule: keep the old one, suspended.
		if err := c.suspendCronJob(ctx, bc); err != nil {
			ensureErr = err
		}
		cronCond = cond(v1beta1.CronJobCreated, v1beta1.ConditionFalse, v1beta1.CronJobCreationFailed,
			"CronJob not created or updated: spec.schedule or spec.timeZone is invalid")
	} else {
		if err := c.ensureRBAC(ctx, bc, d); err != nil {
			ensureErr = err
		} else {
			created, ensureErr = c.ensureCronJob(ctx, bc, d, schedule, suspendWhy != "")
		}
		switch {
		case ensureErr != nil:
			cronCond = cond(v1beta1.CronJobCreated, v1beta1.ConditionFalse, v1beta1.CronJobCreationFailed, ensureErr.Error())
		case suspendWhy != "":
			cronCond = cond(v1beta1.CronJobCreated, v1beta1.ConditionTrue, v1beta1.CronJobCreationSucceeded,
				fmt.Sprintf("CronJob %s is suspended: %s", names.CronJob(bc.Name), suspendWhy))
		default:
			cronCond = cond(v1beta1.CronJobCreated, v1beta1.ConditionTrue, v1beta1.CronJobCreationSucceeded,
				fmt.Sprintf("CronJob %s runs on schedule %q", names.CronJob(bc.Name), schedule))
		}
	}
	checks = append(checks, check{cond: cronCond, ok: cronCond.Status == v1beta1.ConditionTrue, reason: internal.ReasonCronJobFailed})

	if apierrors.HasStatusCause(ensureErr, corev1.NamespaceTerminatingCause) {
		// The namespace is being deleted, and bc with it: nothing can be
		// created there any more, and a retry (or a status saying so)
		// would only load the API server while the namespace empties.
		// bc's deletion is reconciled when it comes.
		return 0, nil
	}
	after, err := c.releaseDeletedTarget(ctx, bc)
	if err != nil && ensureErr == nil {
		ensureErr = err
	}

	if err := c.writeStatus(ctx, bc, checks, schedule, created); err != nil {
		return 0, err
	}
	return internal.Sooner(after, c.recheckSecret(bc, checks)), ensureErr
}

// recheckSecret looks at a configuration whose storage Secret check failed
// again after a delay (5 s, doubling up to 5 min): the operator does not
// watch Secrets, so no event tells it that one appeared or was fixed. A
// Secret that is deleted or loses its key after a passed check is seen at
// the next resync (--resync-period), and by the backup Job, which fails
// naming it.
func (c *Controller) recheckSecret(bc *v1beta1.BackupConfiguration, checks []check) time.Duration {
	key := bc.Namespace + "/" + bc.Name
	for _, ch := range checks {
		if ch.cond.Type == v1beta1.BackendSecretFound && ch.cond.Reason == v1beta1.BackendSecretNotAvailable {
			return c.secretRetry.When(key)
		}
	}
	c.secretRetry.Forget(key)
	return 0
}

// releaseDeletedTarget deletes the finished backup Jobs (and so their pods)
// of bc when its target PVC is being deleted. A completed pod still counts
// as using the claim for the pvc-protection finalizer, so the kept history
// would otherwise hold the user's PVC in Terminating forever. Running Jobs
// (and Jobs whose pod finished a moment before the Job is marked finished)
// are left to finish and looked at again shortly: nothing else re-queues
// the configuration when they do.
func (c *Controller) releaseDeletedTarget(ctx context.Context, bc *v1beta1.BackupConfiguration) (requeueAfter time.Duration, err error) {
	t := bc.Spec.Target
	if t == nil || t.Ref.Name == "" || (t.Ref.Namespace != "" && t.Ref.Namespace != bc.Namespace) {
		return 0, nil
	}
	claim, err := c.pvcs.Get(ctx, bc.Namespace, t.Ref.Name)
	if err != nil || !claim.deleting {
		return 0, nil
	}
	sel := labels.SelectorFromSet(labels.Set{
		v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration,
		v1beta1.LabelInvokerName: names.LabelValue(bc.Name),
		v1beta1.LabelTargetName:  names.LabelValue(t.Ref.Name),
	})
	jobs, err := c.kube.BatchV1().Jobs(bc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return 0, fmt.Errorf("list backup jobs of %s/%s: %v", bc.Namespace, bc.Name, err)
	}
	bg := metav1.DeletePropagationBackground
	for _, j := range jobs.Items {
		if j.DeletionTimestamp != nil {
			continue
		}
		if !jobFinished(&j) {
			requeueAfter = releaseRecheck
			continue
		}
		if err := c.kube.BatchV1().Jobs(bc.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete finished backup job %s/%s: %v", bc.Namespace, j.Name, err)
		}
		c.event(bc, corev1.EventTypeNormal, "TargetReleased",
			fmt.Sprintf("deleted finished backup Job %s: its pod kept PersistentVolumeClaim %s from being deleted", j.Name, t.Ref.Name))
	}
	return requeueAfter, nil
}

// releaseRecheck is how soon a deleted target's unfinished Jobs are looked at again.
const releaseRecheck = 5 * time.Second

func jobFinished(j *batchv1.Job) bool {
	for _, cd := range j.Status.Conditions {
		if (cd.Type == batchv1.JobComplete || cd.Type == batchv1.JobFailed) && cd.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// taskAndPodSettings returns why d may not use its Task (its namespace is
// not allowed) or why its Job would ask for pod settings nobody checked.
func (c *Controller) taskAndPodSettings(ctx context.Context, d *v1beta1.BackupConfiguration, task *v1beta1.Task) []string {
	fns := map[string]*v1beta1.Function{}
	for _, step := range task.Spec.Steps {
		if fn, err := c.fns.Get(step.Name); err == nil {
			fns[step.Name] = fn
		}
	}
	nsLabels := func() map[string]string {
		if l, err := c.namespaces.Get(ctx, "", d.Namespace); err == nil {
			return l
		}
		return nil
	}
	if why := executor.TaskUse(d.Namespace, nsLabels, task, fns); why != "" {
		return []string{why}
	}
	var repo *v1beta1.Repository
	if d.Spec.Repository.Name != "" {
		repo, _ = c.repository(ctx, d)
	}
	if why := c.guard.Check(ctx, podguard.Session(podpolicy.BackupConfigurations, d, repo, task, fns)...); why != "" {
		return []string{why}
	}
	if repo != nil && len(d.Spec.Task.Params) > 0 {
		// A Task parameter that decides what the Job's pod mounts or reads
		// shows only once the Task is resolved: resolve it as a session would.
		probe := &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: d.Namespace}}
		var pe *resolve.TaskParamError
		if _, err := resolve.BackupJob(d, probe, repo, task, fns, c.opts); errors.As(err, &pe) {
			return []string{pe.Error()}
		}
	}
	return nil
}

// evaluate checks validation, Task, Repository, usagePolicy, Secret and PVC.
func (c *Controller) evaluate(ctx context.Context, d *v1beta1.BackupConfiguration) []check {
	var checks []check
	var invalid []string
	if errs := v1beta1.ValidateBackupConfiguration(d); len(errs) > 0 {
		invalid = append(invalid, errs.ToAggregate().Error())
	}
	if errs := resolve.ValidateInvoker(d.Spec.Task, d.Spec.RuntimeSettings); len(errs) > 0 {
		invalid = append(invalid, errs.ToAggregate().Error())
	}

	// Task.
	switch task, err := c.tasks.Get(d.Spec.Task.Name); {
	case err == nil:
		invalid = append(invalid, c.taskAndPodSettings(ctx, d, task)...)
		checks = append(checks, check{cond: cond(v1beta1.TaskFound, v1beta1.ConditionTrue, v1beta1.TaskAvailable, fmt.Sprintf("task %q found", d.Spec.Task.Name)), ok: true})
	case apierrors.IsNotFound(err):
		checks = append(checks, check{cond: cond(v1beta1.TaskFound, v1beta1.ConditionFalse, v1beta1.TaskNotAvailable, fmt.Sprintf("task %q not found", d.Spec.Task.Name)), reason: internal.ReasonTaskNotFound})
	default:
		checks = append(checks, check{cond: cond(v1beta1.TaskFound, v1beta1.ConditionUnknown, v1beta1.TaskNotAvailable, fmt.Sprintf("task %q: %v", d.Spec.Task.Name, err)), reason: internal.ReasonTaskNotFound})
	}

	// Repository and its usagePolicy.
	repoKey := internal.RepositoryKey(d.Namespace, d.Spec.Repository)
	repo, err := c.repository(ctx, d)
	unusable := fmt.Sprintf("repository %s not found, or its usagePolicy does not allow namespace %q", repoKey, d.Namespace)
	cross := crossNamespace(d)
	switch {
	case d.Spec.Repository.Name == "":
		repo = nil
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionFalse, v1beta1.RepositoryNotAvailable, "spec.repository.name is not set"), reason: internal.ReasonRepositoryNotFound})
	case err == nil && repo.DeletionTimestamp == nil:
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionTrue, v1beta1.RepositoryAvailable, fmt.Sprintf("repository %s found", repoKey)), ok: true})
	case err == nil:
		repo = nil
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionFalse, v1beta1.RepositoryNotAvailable, fmt.Sprintf("repository %s is being deleted", repoKey)), reason: internal.ReasonRepositoryNotFound})
	case apierrors.IsNotFound(err) && cross:
		repo = nil
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionFalse, v1beta1.RepositoryNotAvailable, unusable), reason: internal.ReasonRepositoryNotFound})
	case apierrors.IsNotFound(err):
		repo = nil
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionFalse, v1beta1.RepositoryNotAvailable, fmt.Sprintf("repository %s not found", repoKey)), reason: internal.ReasonRepositoryNotFound})
	default:
		repo = nil
		checks = append(checks, check{cond: cond(v1beta1.RepositoryFound, v1beta1.ConditionUnknown, v1beta1.UnableToCheckRepositoryAvailability, fmt.Sprintf("repository %s: %v", repoKey, err)), reason: internal.ReasonRepositoryNotFound})
	}
	if repo != nil {
		if d.Spec.Target != nil {
			if errs := v1beta1.ValidateMountsApart(v1beta1.TargetMountPath(d.Spec.Target.VolumeMounts), repo,
				field.NewPath("spec", "target", "volumeMounts").Index(0).Child("mountPath")); len(errs) > 0 {
				invalid = append(invalid, errs.ToAggregate().Error())
			}
		}
	}

	// The Job's runner refuses extra restic arguments outside its
	// allow-list (pkg/restic/args.go) in every session; say so now, as
	// the Job would receive them (space-joined, then split).
	if d.Spec.Target != nil && len(d.Spec.Target.Args) > 0 {
		if err := restic.CheckBackupArgs(strings.Fields(strings.Join(d.Spec.Target.Args, " "))); err != nil {
			invalid = append(invalid, "spec.target.args: "+err.Error())
		}
	}

	// Validation (spec and usagePolicy).
	if msg := v1beta1.DecodeError(d); msg != "" {
		checks = append(checks, check{cond: cond(v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceUnreadable, msg), reason: internal.ReasonInvalidSpec})
	} else if len(invalid) > 0 {
		checks = append(checks, check{cond: cond(v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, strings.Join(invalid, "; ")), reason: internal.ReasonInvalidSpec})
	} else {
		checks = append(checks, check{cond: cond(v1beta1.ValidationPassed, v1beta1.ConditionTrue, v1beta1.ResourceValidationPassed, "the spec is valid"), ok: true})
	}

	// Storage Secret.
	if repo == nil {
		checks = append(checks, check{cond: cond(v1beta1.BackendSecretFound, v1beta1.ConditionUnknown, v1beta1.UnableToCheckBackendSecretAvailability,
			fmt.Sprintf("repository %s is not available", repoKey)), reason: internal.ReasonBackendSecretNotFound})
	} else {
		msg := c.checkSecret(ctx, repo.Namespace, repo.Spec.Backend.StorageSecretName)
		if msg == "" && repo.Namespace != d.Namespace {
			// The Job reads credentials with envFrom, which only works in its
			// own namespace: a cross-namespace Repository needs a copy here.
			if m := c.checkSecret(ctx, d.Namespace, repo.Spec.Backend.StorageSecretName); m != "" {
				msg = m + " (the backup Job reads the storage Secret of a cross-namespace Repository from its own namespace)"
			}
		}
		if msg != "" {
			checks = append(checks, check{cond: cond(v1beta1.BackendSecretFound, v1beta1.ConditionFalse, v1beta1.BackendSecretNotAvailable, msg), reason: internal.ReasonBackendSecretNotFound})
		} else {
			checks = append(checks, check{cond: cond(v1beta1.BackendSecretFound, v1beta1.ConditionTrue, v1beta1.BackendSecretAvailable,
				fmt.Sprintf("secret %s/%s found", repo.Namespace, repo.Spec.Backend.StorageSecretName)), ok: true})
		}
	}

	// Target PVC.
	checks = append(checks, c.checkTarget(ctx, d))
	return checks
}

// checkSecret returns "" when Secret ns/name exists with RESTIC_PASSWORD,
// else the cause. It never looks at or reports the values.
func (c *Controller) checkSecret(ctx context.Context, ns, name string) string {
	if name == "" {
		return "the repository has no spec.backend.storageSecretName"
	}
	s, err := c.secrets.Get(ctx, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("secret %s/%s not found", ns, name)
	case err != nil:
		return fmt.Sprintf("secret %s/%s: %v", ns, name, err)
	}
	if !s.hasPassword {
		return fmt.Sprintf("secret %s/%s has no RESTIC_PASSWORD key", ns, name)
	}
	return ""
}

func (c *Controller) checkTarget(ctx context.Context, d *v1beta1.BackupConfiguration) check {
	fail := func(st v1beta1.ConditionStatus, reason, msg string) check {
		return check{cond: cond(v1beta1.BackupTargetFound, st, reason, msg), reason: internal.ReasonTargetNotFound}
	}
	t := d.Spec.Target
	if t == nil || t.Ref.Name == "" {
		return fail(v1beta1.ConditionFalse, v1beta1.TargetNotAvailable, "spec.target.ref.name is not set")
	}
	if t.Ref.Namespace != "" && t.Ref.Namespace != d.Namespace {
		return fail(v1beta1.ConditionFalse, v1beta1.TargetNotAvailable,
			fmt.Sprintf("target PersistentVolumeClaim %s/%s is in another namespace; it must be in %s", t.Ref.Namespace, t.Ref.Name, d.Namespace))
	}
	key := d.Namespace + "/" + t.Ref.Name
	pvc, err := c.pvcs.Get(ctx, d.Namespace, t.Ref.Name)
	switch {
	case apierrors.IsNotFound(err):
		return fail(v1beta1.ConditionFalse, v1beta1.TargetNotAvailable, fmt.Sprintf("PersistentVolumeClaim %s not found", key))
	case err != nil:
		return fail(v1beta1.ConditionUnknown, v1beta1.UnableToCheckTargetAvailability, fmt.Sprintf("PersistentVolumeClaim %s: %v", key, err))
	case pvc.deleting:
		return fail(v1beta1.ConditionFalse, v1beta1.TargetNotAvailable, fmt.Sprintf("PersistentVolumeClaim %s is being deleted", key))
	}
	return check{cond: cond(v1beta1.BackupTargetFound, v1beta1.ConditionTrue, v1beta1.TargetAvailable, fmt.Sprintf("PersistentVolumeClaim %s found", key)), ok: true}
}

func scheduleInvalid(d *v1beta1.BackupConfiguration) bool {
	if v1beta1.DecodeError(d) != "" {
		return true // a stand-in has no schedule: keep the CronJob, suspended
	}
	for _, e := range v1beta1.ValidateBackupConfiguration(d) {
		if e.Field == "spec.schedule" || e.Field == "spec.timeZone" {
			return true
		}
	}
	return false
}

// pausingRestores lists the unfinished RestoreSessions of bc's namespace
// that recorded bc in status.pausedBackups.
func (c *Controller) pausingRestores(bc *v1beta1.BackupConfiguration) []string {
	rss, _ := c.restores.RestoreSessions(bc.Namespace).List(labels.Everything())
	var out []string
	for _, rs := range rss {
		if rs.DeletionTimestamp == nil && !rs.Status.Phase.IsFinal() && slices.Contains(rs.Status.PausedBackups, bc.Name) {
			out = append(out, rs.Name)
		}
	}
	slices.Sort(out)
	return out
}

// phase is Stash's phase rule plus one fix: a configuration whose Task is
// missing is not Ready (its sessions could not run).
func phase(conds []v1beta1.Condition) v1beta1.BackupInvokerPhase {
	p := v1beta1.ComputeBackupInvokerPhase(conds)
	if p == v1beta1.BackupInvokerReady && !v1beta1.IsConditionTrue(conds, v1beta1.TaskFound) {
		return v1beta1.BackupInvokerNotReady
	}
	return p
}

// writeStatus records the checks, phase, schedule, observed generation and
// what the sessions decide (fromSessions), through UpdateStatus and only when something changed; it emits an event
// for every check that newly fails, and one when the configuration becomes
// Ready or its CronJob (createdCronJob, "" if none) was created. A new
// configuration that is Ready at once gets one event saying both: Events are
// writes too, and 5,000 new configurations would otherwise cost 10,000.
func (c *Controller) writeStatus(ctx context.Context, bc *v1beta1.BackupConfiguration, checks []check, schedule, createdCronJob string) error {
	now := metav1.NewTime(c.now())
	for _, ch := range checks {
		old := v1beta1.GetCondition(bc.Status.Conditions, ch.cond.Type)
		if !ch.ok && (old == nil || old.Status != ch.cond.Status || old.Message != ch.cond.Message) {
			c.event(bc, corev1.EventTypeWarning, ch.reason, ch.cond.Message)
		}
	}
	sessions := c.sessionsOf(bc)
	mutate := func(obj *v1beta1.BackupConfiguration) bool {
		changed := fromSessions(&obj.Status, sessions)
		for _, ch := range checks {
			cd := ch.cond
			cd.ObservedGeneration = obj.Generation
			changed = v1beta1.SetCondition(&obj.Status.Conditions, cd, now) || changed
		}
		if p := phase(obj.Status.Conditions); obj.Status.Phase != p {
			obj.Status.Phase, changed = p, true
		}
		if obj.Status.Schedule != schedule {
			obj.Status.Schedule, changed = schedule, true
		}
		if obj.Status.ObservedGeneration != obj.Generation {
			obj.Status.ObservedGeneration, changed = obj.Generation, true
		}
		return changed
	}
	wasReady := bc.Status.Phase == v1beta1.BackupInvokerReady
	client := c.stow.StowV1beta1().BackupConfigurations(bc.Namespace)
	var written *v1beta1.BackupConfiguration
	err := internal.UpdateStatus(c.writes, bc.DeepCopy(),
		func() (*v1beta1.BackupConfiguration, error) { return client.Get(ctx, bc.Name, metav1.GetOptions{}) },
		mutate,
		func(obj *v1beta1.BackupConfiguration) error {
			var err error
			// The cache keeps thinned managedFields (trim.Stow): nil makes
			// the API server keep the stored ones.
			obj.ManagedFields = nil
			written, err = client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
			return err
		})
	becameReady := err == nil && written != nil && !wasReady && written.Status.Phase == v1beta1.BackupInvokerReady
	switch {
	case becameReady && createdCronJob != "":
		c.event(bc, corev1.EventTypeNormal, internal.ReasonReady, fmt.Sprintf("created CronJob %s; backups run on schedule %q", createdCronJob, schedule))
	case becameReady:
		c.event(bc, corev1.EventTypeNormal, internal.ReasonReady, fmt.Sprintf("backups run on schedule %q", schedule))
	case createdCronJob != "":
		c.event(bc, corev1.EventTypeNormal, internal.ReasonCronJobCreated, fmt.Sprintf("created CronJob %s with schedule %q", createdCronJob, schedule))
	}
	if err != nil {
		return fmt.Errorf("update status of backupconfiguration %s/%s: %v", bc.Namespace, bc.Name, err)
	}
	return nil
}

// ensureRBAC gives the trigger its identity: none when the user brings a
// ServiceAccount, the namespace's shared one (names.NamespaceTrigger) in
// general, or one of bc's own when bc asks for ServiceAccount annotations
// (trigger.go). Objects of an identity bc no longer uses are removed.
func (c *Controller) ensureRBAC(ctx context.Context, bc, d *v1beta1.BackupConfiguration) error {
	switch triggerIdentityOf(d) {
	case identityUser:
		if err := c.releaseSharedTrigger(ctx, bc.Namespace, bc.UID); err != nil {
			return err
		}
		return c.deleteOwned(ctx, bc, false)
	case identityNamespace:
		if err := c.ensureSharedTrigger(ctx, bc.Namespace); err != nil {
			return err
		}
		return c.deleteOwned(ctx, bc, false)
	}
	if err := c.releaseSharedTrigger(ctx, bc.Namespace, bc.UID); err != nil {
		return err
	}
	ns := bc.Namespace
	if err := c.ensureServiceAccount(ctx, bc, desiredServiceAccount(d)); err != nil {
		return err
	}
	role := desiredRole(bc)
	cur, err := getOrCreate(ctx, c.roles.Roles(ns).Get, c.kube.RbacV1().Roles(ns), role)
	if err != nil {
		return fmt.Errorf("role %s/%s: %v", ns, role.Name, err)
	}
	if !internal.IsControlledBy(cur, bc.UID) {
		return fmt.Errorf("role %s/%s exists and is not owned by backupconfiguration %s", ns, role.Name, bc.Name)
	}
	if !equality.Semantic.DeepEqual(cur.Rules, role.Rules) || !hasLabels(cur.Labels, role.Labels) {
		upd := cur.DeepCopy()
		upd.Rules = role.Rules
		upd.Labels = mergeLabels(upd.Labels, role.Labels)
		if _, err := c.kube.RbacV1().Roles(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update role %s/%s: %v", ns, role.Name, err)
		}
	}

	rb := desiredRoleBinding(bc)
	curRB, err := getOrCreate(ctx, c.bindings.RoleBindings(ns).Get, c.kube.RbacV1().RoleBindings(ns), rb)
	if err != nil {
		return fmt.Errorf("rolebinding %s/%s: %v", ns, rb.Name, err)
	}
	if !internal.IsControlledBy(curRB, bc.UID) {
		return fmt.Errorf("rolebinding %s/%s exists and is not owned by backupconfiguration %s", ns, rb.Name, bc.Name)
	}
	return c.syncRoleBinding(ctx, curRB, rb)
}

// syncRoleBinding makes cur (controlled by Stow) match want.
func (c *Controller) syncRoleBinding(ctx context.Context, cur, want *rbacv1.RoleBinding) error {
	ns := want.Namespace
	if cur.RoleRef != want.RoleRef {
		// roleRef is immutable: replace the binding.
		if err := c.kube.RbacV1().RoleBindings(ns).Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace rolebinding %s/%s: %v", ns, want.Name, err)
		}
		if _, err := c.kube.RbacV1().RoleBindings(ns).Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("replace rolebinding %s/%s: %v", ns, want.Name, err)
		}
	} else if !equality.Semantic.DeepEqual(cur.Subjects, want.Subjects) || !hasLabels(cur.Labels, want.Labels) {
		upd := cur.DeepCopy()
		upd.Subjects = want.Subjects
		upd.Labels = mergeLabels(upd.Labels, want.Labels)
		if _, err := c.kube.RbacV1().RoleBindings(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update rolebinding %s/%s: %v", ns, want.Name, err)
		}
	}
	return nil
}

func (c *Controller) ensureServiceAccount(ctx context.Context, bc *v1beta1.BackupConfiguration, sa *corev1.ServiceAccount) error {
	ns := bc.Namespace
	cur, err := getOrCreate(ctx, c.sas.ServiceAccounts(ns).Get, c.kube.CoreV1().ServiceAccounts(ns), sa)
	if err != nil {
		return fmt.Errorf("serviceaccount %s/%s: %v", ns, sa.Name, err)
	}
	if !internal.IsControlledBy(cur, bc.UID) {
		return fmt.Errorf("serviceaccount %s/%s exists and is not owned by backupconfiguration %s", ns, sa.Name, bc.Name)
	}
	if !hasLabels(cur.Labels, sa.Labels) || !hasLabels(cur.Annotations, sa.Annotations) {
		upd := cur.DeepCopy()
		upd.Labels = mergeLabels(upd.Labels, sa.Labels)
		upd.Annotations = mergeLabels(upd.Annotations, sa.Annotations)
		if _, err := c.kube.CoreV1().ServiceAccounts(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update serviceaccount %s/%s: %v", ns, sa.Name, err)
		}
	}
	return nil
}

// ensureCronJob creates the trigger CronJob or updates it when it drifted;
// it returns the name of the CronJob it created, if it did (the caller
// reports that, with the status it writes).
func (c *Controller) ensureCronJob(ctx context.Context, bc, d *v1beta1.BackupConfiguration, schedule string, suspend bool) (created string, err error) {
	want := desiredCronJob(bc, d, schedule, suspend, c.opts)
	ns := bc.Namespace
	cjs := c.kube.BatchV1().CronJobs(ns)
	cur, err := c.cronJobs.CronJobs(ns).Get(want.Name)
	if apierrors.IsNotFound(err) {
		_, err = cjs.Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			return want.Name, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create cronjob %s/%s: %w", ns, want.Name, err)
		}
		cur, err = cjs.Get(ctx, want.Name, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("cronjob %s/%s: %v", ns, want.Name, err)
	}
	if !internal.IsControlledBy(cur, bc.UID) {
		return "", fmt.Errorf("cronjob %s/%s exists and is not owned by backupconfiguration %s", ns, want.Name, bc.Name)
	}
	if !cronJobDrifted(cur, want) {
		return "", nil
	}
	upd := cur.DeepCopy()
	upd.Spec = want.Spec
	upd.Labels = mergeLabels(upd.Labels, want.Labels)
	upd.Annotations = mergeLabels(upd.Annotations, want.Annotations)
	if _, err := cjs.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("update cronjob %s/%s: %v", ns, want.Name, err)
	}
	c.event(bc, corev1.EventTypeNormal, internal.ReasonCronJobUpdated, fmt.Sprintf("updated CronJob %s (schedule %q, suspend %t)", want.Name, schedule, suspend))
	return "", nil
}

// cronJobDrifted compares the fields Stow sets; fields the API server
// defaults are covered by the spec hash of what Stow last wrote.
func cronJobDrifted(cur, want *batchv1.CronJob) bool {
	return cur.Annotations[SpecHashAnnotation] != want.Annotations[SpecHashAnnotation] ||
		cur.Spec.Schedule != want.Spec.Schedule ||
		ptr.Deref(cur.Spec.Suspend, false) != ptr.Deref(want.Spec.Suspend, false) ||
		ptr.Deref(cur.Spec.TimeZone, "") != ptr.Deref(want.Spec.TimeZone, "") ||
		cur.Spec.ConcurrencyPolicy != want.Spec.ConcurrencyPolicy ||
		!hasLabels(cur.Labels, want.Labels)
}

// suspendCronJob suspends bc's CronJob if it exists and runs.
func (c *Controller) suspendCronJob(ctx context.Context, bc *v1beta1.BackupConfiguration) error {
	cur, err := c.cronJobs.CronJobs(bc.Namespace).Get(names.CronJob(bc.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !internal.IsControlledBy(cur, bc.UID) || ptr.Deref(cur.Spec.Suspend, false) {
		return err
	}
	// A patch, not an Update of the cached object: the cache holds no job
	// template (trim.Owned). The resourceVersion makes it fail, and the
	// reconcile retry, if the CronJob changed since it was read.
	patch := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q},"spec":{"suspend":true}}`, cur.ResourceVersion)
	if _, err := c.kube.BatchV1().CronJobs(bc.Namespace).Patch(ctx, cur.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("suspend cronjob %s/%s: %v", bc.Namespace, cur.Name, err)
	}
	return nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func mergeLabels(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// repository is d's Repository as d may see it (internal.UsableRepository):
// one of another namespace that does not allow d's is not found.
func (c *Controller) repository(ctx context.Context, d *v1beta1.BackupConfiguration) (*v1beta1.Repository, error) {
	repo, err := c.repos.Repositories(d.Spec.Repository.Namespace).Get(d.Spec.Repository.Name)
	if err != nil {
		return repo, err
	}
	nsLabels := func() map[string]string {
		if l, err := c.namespaces.Get(ctx, "", d.Namespace); err == nil {
			return l
		}
		return nil
	}
	if internal.UsableRepository(repo, d.Namespace, nsLabels) == nil {
		return nil, apierrors.NewNotFound(v1beta1.Resource("repositories"), d.Spec.Repository.Name)
	}
	return repo, nil
}

// crossNamespace tells whether d's Repository is of another namespace.
func crossNamespace(d *v1beta1.BackupConfiguration) bool {
	return d.Spec.Repository.Namespace != "" && d.Spec.Repository.Namespace != d.Namespace
}
