package backupconfiguration

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowfake "github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/controller/trim"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
)

const ns = "demo"

// ownedSelector is the operator's selector of Stow's objects (cmd/stow-operator).
var ownedSelector = v1beta1.LabelManagedBy + "=" + v1beta1.ManagedByStow

type fixture struct {
	t    *testing.T
	kube *k8sfake.Clientset
	stow *stowfake.Clientset
	kinf informers.SharedInformerFactory
	sinf externalversions.SharedInformerFactory
	rec  *record.FakeRecorder
	c    *Controller
}

func newFixture(t *testing.T, kubeObjs, stowObjs []runtime.Object) *fixture {
	f := &fixture{t: t, kube: k8sfake.NewClientset(kubeObjs...), stow: stowfake.NewSimpleClientset(stowObjs...), rec: record.NewFakeRecorder(100)}
	f.kinf = informers.NewSharedInformerFactoryWithOptions(f.kube, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.LabelSelector = ownedSelector
	}))
	f.sinf = externalversions.NewSharedInformerFactory(f.stow, 0)
	f.c = NewController(f.kube, f.stow, f.kinf, f.sinf, f.rec, resolve.Options{Image: "stow:test", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}})
	f.c.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return f
}

// refresh copies the fake API state into the informer stores, standing in for
// the watches so that sync can be driven directly and deterministically.
func (f *fixture) refresh() {
	ctx := context.Background()
	// The objects pass the operator's informer transforms, so every test
	// runs on caches as thin as the operator's (cmd/stow-operator).
	replaceWith := func(transform cache.TransformFunc, inf cache.SharedIndexInformer, objs []any) {
		for i := range objs {
			objs[i], _ = transform(objs[i])
		}
		if err := inf.GetStore().Replace(objs, ""); err != nil {
			f.t.Fatal(err)
		}
	}
	replace := func(inf cache.SharedIndexInformer, objs []any) { replaceWith(trim.Stow, inf, objs) }
	replaceOwned := func(inf cache.SharedIndexInformer, objs []any) { replaceWith(trim.Owned, inf, objs) }
	opts := metav1.ListOptions{}
	s := f.sinf.Stow().V1beta1()
	bcs, _ := f.stow.StowV1beta1().BackupConfigurations("").List(ctx, opts)
	replace(s.BackupConfigurations().Informer(), items(bcs.Items))
	repos, _ := f.stow.StowV1beta1().Repositories("").List(ctx, opts)
	replace(s.Repositories().Informer(), items(repos.Items))
	tasks, _ := f.stow.StowV1beta1().Tasks().List(ctx, opts)
	replace(s.Tasks().Informer(), items(tasks.Items))
	fns, _ := f.stow.StowV1beta1().Functions().List(ctx, opts)
	replace(s.Functions().Informer(), items(fns.Items))
	rss, _ := f.stow.StowV1beta1().RestoreSessions("").List(ctx, opts)
	replace(s.RestoreSessions().Informer(), items(rss.Items))
	bss, _ := f.stow.StowV1beta1().BackupSessions("").List(ctx, opts)
	replace(s.BackupSessions().Informer(), items(bss.Items))
	// Only Stow's objects reach the caches (the factory's label selector);
	// Secrets, PVCs and Namespaces are read on demand.
	opts = metav1.ListOptions{LabelSelector: ownedSelector}
	core := f.kinf.Core().V1()
	sas, _ := f.kube.CoreV1().ServiceAccounts("").List(ctx, opts)
	replaceOwned(core.ServiceAccounts().Informer(), items(sas.Items))
	cjs, _ := f.kube.BatchV1().CronJobs("").List(ctx, opts)
	replaceOwned(f.kinf.Batch().V1().CronJobs().Informer(), items(cjs.Items))
	roles, _ := f.kube.RbacV1().Roles("").List(ctx, opts)
	replaceOwned(f.kinf.Rbac().V1().Roles().Informer(), items(roles.Items))
	rbs, _ := f.kube.RbacV1().RoleBindings("").List(ctx, opts)
	replaceOwned(f.kinf.Rbac().V1().RoleBindings().Informer(), items(rbs.Items))
	// A test changes Secrets between syncs without waiting out the TTL.
	f.c.secrets.Forget("", "")
}

func items[T any](list []T) []any {
	out := make([]any, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	return out
}

func (f *fixture) sync(name string) error {
	f.t.Helper()
	f.refresh()
	f.kube.ClearActions()
	f.stow.ClearActions()
	after, err := f.c.sync(context.Background(), ns+"/"+name)
	if err == nil && after > 0 {
		f.c.queue.AddAfter(ns+"/"+name, after) // as the work loop does
	}
	return err
}

func (f *fixture) mustSync(name string) {
	f.t.Helper()
	if err := f.sync(name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
}

func (f *fixture) bc(name string) *v1beta1.BackupConfiguration {
	f.t.Helper()
	bc, err := f.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get bc: %v", err)
	}
	return bc
}

func (f *fixture) cronJob(name string) *batchv1.CronJob {
	cj, err := f.kube.BatchV1().CronJobs(ns).Get(context.Background(), names.CronJob(name), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return cj
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) writes() []string {
	var out []string
	for _, a := range append(f.kube.Actions(), f.stow.Actions()...) {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			out = append(out, v+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

func backupConfig(name string) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-bc-" + name), Generation: 3},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:        "*/5 * * * *",
			Repository:      v1beta1.ObjectRef{Name: "repo"},
			Target:          &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: "data"}},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep", KeepLast: 3, Prune: true},
		},
	}
}

func repository(namespace string) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: namespace},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "creds",
			S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}}},
	}
}

func task() *v1beta1.Task {
	return &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: v1beta1.TaskPVCBackup}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{{Name: "pvc-backup"}}}}
}

func secret(namespace string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: namespace}, Data: data}
}

func pvc() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns}}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

var password = map[string][]byte{"RESTIC_PASSWORD": []byte("s3cr3t-value")}

func healthyKube() []runtime.Object {
	return []runtime.Object{secret(ns, password), pvc(), namespace(ns, nil)}
}

func condOf(t *testing.T, bc *v1beta1.BackupConfiguration, typ string) v1beta1.Condition {
	t.Helper()
	c := v1beta1.GetCondition(bc.Status.Conditions, typ)
	if c == nil {
		t.Fatalf("condition %s missing in %+v", typ, bc.Status.Conditions)
	}
	return *c
}

func TestReadyConfigurationGetsCronJobAndLeastPrivilegeRBAC(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("nightly"), repository(ns), task()})
	f.mustSync("nightly")

	bc := f.bc("nightly")
	if bc.Status.Phase != v1beta1.BackupInvokerReady {
		t.Fatalf("phase = %q, conditions %+v", bc.Status.Phase, bc.Status.Conditions)
	}
	for _, typ := range []string{v1beta1.RepositoryFound, v1beta1.BackendSecretFound, v1beta1.ValidationPassed, v1beta1.BackupTargetFound, v1beta1.TaskFound, v1beta1.CronJobCreated} {
		if c := condOf(t, bc, typ); c.Status != v1beta1.ConditionTrue || c.ObservedGeneration != 3 {
			t.Errorf("%s = %+v", typ, c)
		}
	}
	if bc.Status.ObservedGeneration != 3 || bc.Status.Schedule != "*/5 * * * *" {
		t.Errorf("observedGeneration %d schedule %q", bc.Status.ObservedGeneration, bc.Status.Schedule)
	}
	if len(bc.Finalizers) != 0 {
		t.Errorf("finalizers = %v on a configuration without sessions; a finalizer is a write it does not need", bc.Finalizers)
	}

	cj := f.cronJob("nightly")
	if cj == nil {
		t.Fatal("CronJob not created")
	}
	spec := cj.Spec
	pod := spec.JobTemplate.Spec.Template.Spec
	switch {
	case spec.Schedule != "*/5 * * * *", ptr.Deref(spec.Suspend, true), spec.ConcurrencyPolicy != batchv1.ForbidConcurrent,
		spec.StartingDeadlineSeconds == nil, ptr.Deref(spec.SuccessfulJobsHistoryLimit, 9) > 3, ptr.Deref(spec.FailedJobsHistoryLimit, 9) > 3:
		t.Errorf("cronjob spec = %+v", spec)
	}
	js := spec.JobTemplate.Spec
	if ptr.Deref(js.BackoffLimit, 1) != 0 || js.ActiveDeadlineSeconds == nil || js.TTLSecondsAfterFinished == nil {
		t.Errorf("job template = %+v", js)
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != TriggerContainer || pod.Containers[0].Image != "stow:test" ||
		strings.Join(pod.Containers[0].Args, " ") != "create-backupsession --namespace=demo --invoker-name=nightly" {
		t.Errorf("trigger container = %+v", pod.Containers)
	}
	if pod.ServiceAccountName != names.NamespaceTrigger || pod.RestartPolicy != corev1.RestartPolicyNever || len(pod.ImagePullSecrets) != 1 {
		t.Errorf("trigger pod = sa %q restart %q pull %v", pod.ServiceAccountName, pod.RestartPolicy, pod.ImagePullSecrets)
	}
	if ref := metav1.GetControllerOf(cj); ref == nil || ref.UID != bc.UID || ref.Kind != v1beta1.KindBackupConfiguration {
		t.Errorf("cronjob owner = %+v", cj.OwnerReferences)
	}

	// The namespace's shared trigger identity: no owner (it serves every
	// configuration of the namespace), Stow's label, the two rules.
	checkTriggerRBAC(t, f, names.NamespaceTrigger, []rbacv1.PolicyRule{
		{APIGroups: []string{"stow.dev"}, Resources: []string{"backupconfigurations"}, Verbs: []string{"get"}},
		{APIGroups: []string{"stow.dev"}, Resources: []string{"backupsessions"}, Verbs: []string{"create"}},
	}, "")

	// One Event says both that the CronJob was created and that the
	// configuration is Ready: each Event is a write to the API server.
	evs := f.events()
	if len(evs) != 1 || !strings.HasPrefix(evs[0], "Normal Ready created CronJob stow-trigger-") {
		t.Errorf("events = %q", evs)
	}

	// A second sync with nothing changed writes nothing.
	f.mustSync("nightly")
	if w := f.writes(); len(w) > 0 {
		t.Errorf("idempotent sync wrote %v", w)
	}
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("idempotent sync emitted %v", ev)
	}
}

// checkTriggerRBAC checks the trigger ServiceAccount, Role and RoleBinding
// named name: the Role's rules, and the controller (a UID, or none).
func checkTriggerRBAC(t *testing.T, f *fixture, name string, rules []rbacv1.PolicyRule, owner types.UID) {
	t.Helper()
	ctx := context.Background()
	ownedBy := func(kind string, o metav1.Object) {
		t.Helper()
		ref := metav1.GetControllerOf(o)
		switch {
		case owner == "" && ref != nil:
			t.Errorf("%s %s has a controller %+v; want none", kind, name, ref)
		case owner != "" && (ref == nil || ref.UID != owner):
			t.Errorf("%s %s controller = %+v; want %s", kind, name, ref, owner)
		}
		if o.GetLabels()[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow {
			t.Errorf("%s %s lacks the managed-by label the operator's cache selects: %v", kind, name, o.GetLabels())
		}
	}
	sa, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("serviceaccount: %v", err)
	}
	ownedBy("serviceaccount", sa)
	role, err := f.kube.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("role: %v", err)
	}
	ownedBy("role", role)
	if !equalRules(role.Rules, rules) {
		t.Errorf("role rules = %+v, want exactly %+v", role.Rules, rules)
	}
	rb, err := f.kube.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != name || rb.Subjects[0].Namespace != ns {
		t.Fatalf("rolebinding = %+v, %v", rb, err)
	}
	ownedBy("rolebinding", rb)
}

// A configuration with serviceAccountAnnotations keeps a trigger identity of
// its own: annotations of one configuration must not land on the shared one.
func TestAnnotatedServiceAccountIsPerConfiguration(t *testing.T) {
	bc := backupConfig("nightly")
	bc.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{ServiceAccountAnnotations: map[string]string{"example.com/role": "x"}}
	f := newFixture(t, healthyKube(), []runtime.Object{bc, backupConfig("other"), repository(ns), task()})
	f.mustSync("nightly")
	name := names.TriggerServiceAccount("nightly")
	if sa := f.cronJob("nightly").Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName; sa != name {
		t.Errorf("trigger pod ServiceAccount = %q, want %q", sa, name)
	}
	checkTriggerRBAC(t, f, name, []rbacv1.PolicyRule{
		{APIGroups: []string{"stow.dev"}, Resources: []string{"backupconfigurations"}, ResourceNames: []string{"nightly"}, Verbs: []string{"get"}},
		{APIGroups: []string{"stow.dev"}, Resources: []string{"backupsessions"}, Verbs: []string{"create"}},
	}, bc.UID)
	sa, _ := f.kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
	if sa.Annotations["example.com/role"] != "x" {
		t.Errorf("annotations = %v", sa.Annotations)
	}
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), names.NamespaceTrigger, metav1.GetOptions{}); err == nil {
		t.Errorf("the shared identity was created for a configuration that does not use it")
	}

	// Dropping the annotations moves it to the shared identity and removes its own.
	cur := f.bc("nightly")
	cur.Spec.RuntimeSettings.Pod = nil
	_, _ = f.stow.StowV1beta1().BackupConfigurations(ns).Update(context.Background(), cur, metav1.UpdateOptions{})
	f.mustSync("nightly")
	if sa := f.cronJob("nightly").Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName; sa != names.NamespaceTrigger {
		t.Errorf("trigger pod ServiceAccount = %q after dropping the annotations", sa)
	}
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{}); err == nil {
		t.Errorf("the configuration's own ServiceAccount was kept")
	}
}

// Many configurations of a namespace share three trigger objects: the
// second configuration's first sync writes no RBAC at all.
func TestSharedTriggerIsWrittenOncePerNamespace(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("a"), backupConfig("b"), repository(ns), task()})
	f.mustSync("a")
	f.mustSync("b")
	for _, w := range f.writes() {
		if strings.Contains(w, "serviceaccounts") || strings.Contains(w, "roles") || strings.Contains(w, "rolebindings") {
			t.Errorf("second configuration wrote %s", w)
		}
	}
	sas, _ := f.kube.CoreV1().ServiceAccounts(ns).List(context.Background(), metav1.ListOptions{})
	if len(sas.Items) != 1 {
		t.Errorf("%d ServiceAccounts for two configurations, want 1", len(sas.Items))
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i].APIGroups, ",") != strings.Join(b[i].APIGroups, ",") || strings.Join(a[i].Resources, ",") != strings.Join(b[i].Resources, ",") ||
			strings.Join(a[i].ResourceNames, ",") != strings.Join(b[i].ResourceNames, ",") || strings.Join(a[i].Verbs, ",") != strings.Join(b[i].Verbs, ",") {
			return false
		}
	}
	return true
}

func TestBadInputs(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*v1beta1.BackupConfiguration)
		kube       []runtime.Object
		stow       []runtime.Object // besides the bc
		condType   string
		condStatus v1beta1.ConditionStatus
		condReason string
		msg        string
		phase      v1beta1.BackupInvokerPhase
		cronJob    string // "none", "suspended", "active"
		event      string
	}{
		{name: "missing repository", stow: []runtime.Object{task()}, kube: healthyKube(),
			condType: v1beta1.RepositoryFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.RepositoryNotAvailable, msg: "repository demo/repo not found",
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning RepositoryNotFound"},
		{name: "missing secret", stow: []runtime.Object{repository(ns), task()}, kube: []runtime.Object{pvc()},
			condType: v1beta1.BackendSecretFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.BackendSecretNotAvailable, msg: "secret demo/creds not found",
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning BackendSecretNotFound"},
		{name: "secret without password", stow: []runtime.Object{repository(ns), task()}, kube: []runtime.Object{pvc(), secret(ns, map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("s3cr3t-value")})},
			condType: v1beta1.BackendSecretFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.BackendSecretNotAvailable, msg: "has no RESTIC_PASSWORD key",
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning BackendSecretNotFound"},
		{name: "missing pvc", stow: []runtime.Object{repository(ns), task()}, kube: []runtime.Object{secret(ns, password)},
			condType: v1beta1.BackupTargetFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.TargetNotAvailable, msg: "PersistentVolumeClaim demo/data not found",
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning TargetNotFound"},
		{name: "unknown task", mutate: func(bc *v1beta1.BackupConfiguration) { bc.Spec.Task.Name = "nope" }, stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			condType: v1beta1.TaskFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.TaskNotAvailable, msg: `task "nope" not found`,
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning TaskNotFound"},
		{name: "invalid cron", mutate: func(bc *v1beta1.BackupConfiguration) { bc.Spec.Schedule = "every day" }, stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: "spec.schedule",
			phase: v1beta1.BackupInvokerInvalid, cronJob: "none", event: "Warning InvalidSpec"},
		{name: "cross-namespace pvc", mutate: func(bc *v1beta1.BackupConfiguration) { bc.Spec.Target.Ref.Namespace = "other" }, stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: "spec.target.ref.namespace",
			phase: v1beta1.BackupInvokerInvalid, cronJob: "suspended", event: "Warning InvalidSpec"},
		{name: "usage policy forbids namespace", stow: []runtime.Object{repository("vault"), task()},
			mutate:   func(bc *v1beta1.BackupConfiguration) { bc.Spec.Repository.Namespace = "vault" },
			kube:     append(healthyKube(), secret("vault", password)),
			condType: v1beta1.RepositoryFound, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.RepositoryNotAvailable, msg: `repository vault/repo not found, or its usagePolicy does not allow namespace "demo"`,
			phase: v1beta1.BackupInvokerNotReady, cronJob: "suspended", event: "Warning RepositoryNotFound"},
		{name: "restic argument the Job would refuse", mutate: func(bc *v1beta1.BackupConfiguration) {
			bc.Spec.Target.Args = []string{"--ignore-inode", "--tag=t1,t2"} // Stash's passing_args guide
		}, stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: `spec.target.args: restic backup argument "--tag=t1,t2" is not allowed`,
			phase: v1beta1.BackupInvokerInvalid, cronJob: "suspended", event: "Warning InvalidSpec"},
		// A Task parameter may not replace a variable Stow computes: the
		// Job would mount another PVC than the one checked and tagged.
		{name: "task param replaces TARGET_NAME", stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			mutate: func(bc *v1beta1.BackupConfiguration) {
				bc.Spec.Task.Params = []v1beta1.Param{{Name: "TARGET_NAME", Value: "other-pvc"}}
			},
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: `spec.task.params[0].name: Invalid value: "TARGET_NAME"`,
			phase: v1beta1.BackupInvokerInvalid, cronJob: "suspended", event: "Warning InvalidSpec"},
		// runtimeSettings env may not steer the runner (STOW_RESTIC: the
		// program run as restic), nor envFrom without a safe prefix.
		{name: "env steers the runner", stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			mutate: func(bc *v1beta1.BackupConfiguration) {
				bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "STOW_RESTIC", Value: "/stow-data/x"}},
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}
			},
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: `spec.runtimeSettings.container.env[0].name: Invalid value: "STOW_RESTIC"`,
			phase: v1beta1.BackupInvokerInvalid, cronJob: "suspended", event: "Warning InvalidSpec"},
		// A Task parameter may not choose the Secret a Task's volume reads.
		{name: "task param chooses a Secret", kube: healthyKube(),
			stow: []runtime.Object{repository(ns),
				&v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: v1beta1.TaskPVCBackup}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{{Name: "fn"}},
					Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "${secret:=creds}"}}}}}},
				&v1beta1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}, Spec: v1beta1.FunctionSpec{Image: "img", VolumeMounts: []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}}}},
			mutate: func(bc *v1beta1.BackupConfiguration) {
				bc.Spec.Task.Params = []v1beta1.Param{{Name: "secret", Value: "db-admin"}}
			},
			condType: v1beta1.ValidationPassed, condStatus: v1beta1.ConditionFalse, condReason: v1beta1.ResourceValidationFailed, msg: `spec.task.params[0] (secret) decides a volume {"secret":{"secretName":"db-admin"}}`,
			phase: v1beta1.BackupInvokerInvalid, cronJob: "suspended", event: "Warning InvalidSpec"},
		{name: "paused", mutate: func(bc *v1beta1.BackupConfiguration) { bc.Spec.Paused = true }, stow: []runtime.Object{repository(ns), task()}, kube: healthyKube(),
			condType: v1beta1.CronJobCreated, condStatus: v1beta1.ConditionTrue, condReason: v1beta1.CronJobCreationSucceeded, msg: "suspended: spec.paused is true",
			phase: v1beta1.BackupInvokerReady, cronJob: "suspended", event: "Normal Ready created CronJob"},
		{name: "paused by a running restore", stow: []runtime.Object{repository(ns), task(), &v1beta1.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: ns}, Status: v1beta1.RestoreSessionStatus{Phase: v1beta1.RestoreRunning, PausedBackups: []string{"bc"}}}},
			kube:     healthyKube(),
			condType: v1beta1.CronJobCreated, condStatus: v1beta1.ConditionTrue, condReason: v1beta1.CronJobCreationSucceeded, msg: "paused while RestoreSession rs runs",
			phase: v1beta1.BackupInvokerReady, cronJob: "suspended", event: "Normal Ready created CronJob"},
		{name: "finished restore does not pause", stow: []runtime.Object{repository(ns), task(), &v1beta1.RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: ns}, Status: v1beta1.RestoreSessionStatus{Phase: v1beta1.RestoreSucceeded, PausedBackups: []string{"bc"}}}},
			kube:     healthyKube(),
			condType: v1beta1.CronJobCreated, condStatus: v1beta1.ConditionTrue, condReason: v1beta1.CronJobCreationSucceeded, msg: "runs on schedule",
			phase: v1beta1.BackupInvokerReady, cronJob: "active", event: "Normal Ready created CronJob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bc := backupConfig("bc")
			if tt.mutate != nil {
				tt.mutate(bc)
			}
			f := newFixture(t, tt.kube, append([]runtime.Object{bc}, tt.stow...))
			_ = f.sync("bc") // errors requeue; the status must still say why
			got := f.bc("bc")
			c := condOf(t, got, tt.condType)
			if c.Status != tt.condStatus || c.Reason != tt.condReason || !strings.Contains(c.Message, tt.msg) {
				t.Errorf("%s = %+v, want %s/%s containing %q", tt.condType, c, tt.condStatus, tt.condReason, tt.msg)
			}
			if got.Status.Phase != tt.phase {
				t.Errorf("phase = %q, want %q (conditions %+v)", got.Status.Phase, tt.phase, got.Status.Conditions)
			}
			cj := f.cronJob("bc")
			state := "none"
			if cj != nil {
				state = "active"
				if ptr.Deref(cj.Spec.Suspend, false) {
					state = "suspended"
				}
			}
			if state != tt.cronJob {
				t.Errorf("cronjob = %s, want %s", state, tt.cronJob)
			}
			ev := strings.Join(f.events(), "\n")
			if !strings.Contains(ev, tt.event) {
				t.Errorf("events %q lack %q", ev, tt.event)
			}
			if strings.Contains(ev, "s3cr3t-value") {
				t.Errorf("an event leaks a secret value: %s", ev)
			}
		})
	}
}

func TestPVCTransitions(t *testing.T) {
	f := newFixture(t, []runtime.Object{secret(ns, password)}, []runtime.Object{backupConfig("bc"), repository(ns), task()})
	steps := []struct {
		do      func()
		phase   v1beta1.BackupInvokerPhase
		target  v1beta1.ConditionStatus
		suspend bool
	}{
		{func() {}, v1beta1.BackupInvokerNotReady, v1beta1.ConditionFalse, true},
		{func() {
			_, _ = f.kube.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc(), metav1.CreateOptions{})
		},
			v1beta1.BackupInvokerReady, v1beta1.ConditionTrue, false},
		{func() {
			_ = f.kube.CoreV1().PersistentVolumeClaims(ns).Delete(context.Background(), "data", metav1.DeleteOptions{})
		},
			v1beta1.BackupInvokerNotReady, v1beta1.ConditionFalse, true},
	}
	for i, s := range steps {
		s.do()
		f.mustSync("bc")
		bc := f.bc("bc")
		if bc.Status.Phase != s.phase || condOf(t, bc, v1beta1.BackupTargetFound).Status != s.target {
			t.Errorf("step %d: phase %q target %+v", i, bc.Status.Phase, condOf(t, bc, v1beta1.BackupTargetFound))
		}
		if cj := f.cronJob("bc"); cj == nil || ptr.Deref(cj.Spec.Suspend, false) != s.suspend {
			t.Errorf("step %d: cronjob suspend = %v, want %v", i, cj.Spec.Suspend, s.suspend)
		}
	}
}

func TestRandomScheduleIsStable(t *testing.T) {
	bc := backupConfig("bc")
	bc.Spec.Schedule = v1beta1.ScheduleDailyRandom
	bc.Spec.TimeZone = ptr.To("Europe/Paris")
	var seen []string
	for i := 0; i < 2; i++ {
		f := newFixture(t, healthyKube(), []runtime.Object{bc.DeepCopy(), repository(ns), task()})
		f.mustSync("bc")
		f.mustSync("bc")
		got := f.bc("bc")
		cj := f.cronJob("bc")
		if got.Status.Schedule != cj.Spec.Schedule || ptr.Deref(cj.Spec.TimeZone, "") != "Europe/Paris" {
			t.Fatalf("status schedule %q, cronjob %q tz %v", got.Status.Schedule, cj.Spec.Schedule, cj.Spec.TimeZone)
		}
		if _, err := v1beta1.ParseSchedule(cj.Spec.Schedule); err != nil || strings.HasPrefix(cj.Spec.Schedule, "@") {
			t.Fatalf("resolved schedule %q: %v", cj.Spec.Schedule, err)
		}
		seen = append(seen, cj.Spec.Schedule)
	}
	if seen[0] != seen[1] || seen[0] != v1beta1.ResolveSchedule(ns, "bc", v1beta1.ScheduleDailyRandom) {
		t.Errorf("schedules %v are not stable", seen)
	}
}

func TestDriftIsRepaired(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("bc"), repository(ns), task()})
	f.mustSync("bc")
	ctx := context.Background()
	cj := f.cronJob("bc")
	cj.Spec.Schedule = "0 0 1 1 *"
	cj.Spec.Suspend = ptr.To(true)
	_, _ = f.kube.BatchV1().CronJobs(ns).Update(ctx, cj, metav1.UpdateOptions{})
	name := names.NamespaceTrigger
	role, _ := f.kube.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
	_, _ = f.kube.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{})
	_ = f.kube.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{})

	f.mustSync("bc")
	if cj := f.cronJob("bc"); cj.Spec.Schedule != "*/5 * * * *" || ptr.Deref(cj.Spec.Suspend, true) {
		t.Errorf("cronjob not repaired: %q suspend %v", cj.Spec.Schedule, cj.Spec.Suspend)
	}
	role, _ = f.kube.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{})
	if len(role.Rules) != 2 {
		t.Errorf("role not repaired: %+v", role.Rules)
	}
	if _, err := f.kube.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("rolebinding not recreated: %v", err)
	}

	// A schedule change updates the CronJob and status.schedule.
	bc := f.bc("bc")
	bc.Spec.Schedule = "@hourly-random"
	bc.Generation++
	_, _ = f.stow.StowV1beta1().BackupConfigurations(ns).Update(ctx, bc, metav1.UpdateOptions{})
	f.mustSync("bc")
	want := v1beta1.ResolveSchedule(ns, "bc", "@hourly-random")
	if got := f.bc("bc"); got.Status.Schedule != want || f.cronJob("bc").Spec.Schedule != want || got.Status.ObservedGeneration != bc.Generation {
		t.Errorf("schedule change: status %q cronjob %q, want %q", got.Status.Schedule, f.cronJob("bc").Spec.Schedule, want)
	}
	if ev := strings.Join(f.events(), "\n"); !strings.Contains(ev, "Normal CronJobUpdated") {
		t.Errorf("events = %s", ev)
	}
}

func TestUserServiceAccountReplacesStowRBAC(t *testing.T) {
	bc := backupConfig("bc")
	f := newFixture(t, healthyKube(), []runtime.Object{bc, repository(ns), task()})
	f.mustSync("bc")
	cur := f.bc("bc")
	cur.Spec.RuntimeSettings.Pod = &v1beta1.PodRuntimeSettings{ServiceAccountName: "mine"}
	_, _ = f.stow.StowV1beta1().BackupConfigurations(ns).Update(context.Background(), cur, metav1.UpdateOptions{})
	f.mustSync("bc")
	if sa := f.cronJob("bc").Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName; sa != "mine" {
		t.Errorf("serviceAccountName = %q", sa)
	}
	name := names.NamespaceTrigger
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{}); err == nil {
		t.Errorf("Stow's ServiceAccount was kept although the user brings one")
	}
	if _, err := f.kube.RbacV1().Roles(ns).Get(context.Background(), name, metav1.GetOptions{}); err == nil {
		t.Errorf("Stow's Role was kept although the user brings a ServiceAccount")
	}
}

// A configuration that ran a session has Pushgateway metrics: it gets the
// finalizer, and its deletion cleans up before the finalizer goes.
func TestDeletionCleansUp(t *testing.T) {
	sess := func(bc string) *v1beta1.BackupSession {
		s := session(bc+"-1", v1beta1.BackupSessionSucceeded, time.Now(), -1)
		s.Namespace, s.Spec.Invoker.Name = ns, bc
		return s
	}
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("bc"), backupConfig("other"), repository(ns), task(), sess("bc"), sess("other")})
	deleted := &groupRecorder{}
	f.c.WithMetrics(deleted)
	f.mustSync("bc")
	f.mustSync("other")
	for _, name := range []string{"bc", "other"} {
		if got := f.bc(name).Finalizers; !slices.Equal(got, []string{v1beta1.Finalizer}) {
			t.Fatalf("%s has finalizers %v after its session, want %s", name, got, v1beta1.Finalizer)
		}
	}
	ctx := context.Background()
	del := func(name string) {
		bc := f.bc(name)
		now := metav1.Now()
		bc.DeletionTimestamp = &now
		_, _ = f.stow.StowV1beta1().BackupConfigurations(ns).Update(ctx, bc, metav1.UpdateOptions{})
		f.mustSync(name)
	}
	// The shared trigger identity stays while another configuration uses it.
	del("other")
	name := names.NamespaceTrigger
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("shared serviceaccount deleted while bc still uses it: %v", err)
	}
	deleted.groups = nil
	del("bc")
	if f.cronJob("bc") != nil {
		t.Error("cronjob not deleted")
	}
	assertNoSharedTrigger(t, f)
	if got := f.bc("bc"); len(got.Finalizers) != 0 {
		t.Errorf("finalizers = %v", got.Finalizers)
	}
	if want := []string{"BackupConfiguration/" + ns + "/bc"}; !slices.Equal(deleted.groups, want) {
		t.Errorf("pushgateway groups deleted = %v, want %v", deleted.groups, want)
	}
}

func assertNoSharedTrigger(t *testing.T, f *fixture) {
	t.Helper()
	ctx, name := context.Background(), names.NamespaceTrigger
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		t.Error("serviceaccount not deleted")
	}
	if _, err := f.kube.RbacV1().Roles(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		t.Error("role not deleted")
	}
	if _, err := f.kube.RbacV1().RoleBindings(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		t.Error("rolebinding not deleted")
	}
}

// A configuration without sessions has no finalizer: once it is gone, its
// sync releases the shared trigger identity (the garbage collector takes
// the CronJob it owns) and deletes the Pushgateway group a late session
// may have left; the first session adds the finalizer.
func TestDeletionWithoutFinalizerCleansUp(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("bc"), backupConfig("other"), repository(ns), task()})
	deleted := &groupRecorder{}
	f.c.WithMetrics(deleted)
	f.mustSync("bc")
	f.mustSync("other")
	ctx := context.Background()
	if ref := metav1.GetControllerOf(f.cronJob("bc")); ref == nil || ref.UID != f.bc("bc").UID {
		t.Fatalf("the CronJob's controller is %+v: the garbage collector would not delete it with bc", ref)
	}

	// The first session brings the finalizer, and only that write.
	s := session("other-1", v1beta1.BackupSessionRunning, time.Now(), -1)
	s.Namespace, s.Spec.Invoker.Name = ns, "other"
	if _, err := f.stow.StowV1beta1().BackupSessions(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.refresh()
	f.c.onSessionAdded(s)
	if key, _ := f.c.queue.Get(); key != ns+"/other" {
		t.Fatalf("a new session queued %q, want its configuration", key)
	} else {
		f.c.queue.Done(key)
	}
	f.mustSync("other")
	if got := f.bc("other").Finalizers; !slices.Equal(got, []string{v1beta1.Finalizer}) {
		t.Fatalf("finalizers %v after the first session", got)
	}

	if err := f.stow.StowV1beta1().BackupConfigurations(ns).Delete(ctx, "bc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync("bc")
	if _, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, names.NamespaceTrigger, metav1.GetOptions{}); err != nil {
		t.Errorf("shared serviceaccount deleted while other still uses it: %v", err)
	}
	if want := []string{"BackupConfiguration/" + ns + "/bc"}; !slices.Equal(deleted.groups, want) {
		t.Errorf("pushgateway groups deleted = %v, want %v", deleted.groups, want)
	}
	// other goes the finalizer's way; bc's gone no longer sees a user.
	other := f.bc("other")
	now := metav1.Now()
	other.DeletionTimestamp = &now
	if _, err := f.stow.StowV1beta1().BackupConfigurations(ns).Update(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync("other")
	assertNoSharedTrigger(t, f)
}

// The shared trigger identity of a namespace whose configurations were
// deleted while the operator was down is found by the informers' listing at
// start (onOwned) and deleted; one still in use is not.
func TestUnusedSharedTriggerIsSwept(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("bc"), repository(ns), task()})
	f.mustSync("bc")
	ctx := context.Background()
	sa, err := f.kube.CoreV1().ServiceAccounts(ns).Get(ctx, names.NamespaceTrigger, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.c.onOwned(sa)
	if key, _ := f.c.queue.Get(); key != ns+"/bc" {
		t.Fatalf("the shared ServiceAccount of a used identity queued %q, want its user", key)
	} else {
		f.c.queue.Done(key)
	}

	// bc is deleted while no operator watches: no event, no sync of bc.
	if err := f.stow.StowV1beta1().BackupConfigurations(ns).Delete(ctx, "bc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.refresh()
	f.c.onOwned(sa)
	key, _ := f.c.queue.Get()
	f.c.queue.Done(key)
	if key != sharedTriggerKey(ns) {
		t.Fatalf("an unused shared ServiceAccount queued %q, want %q", key, sharedTriggerKey(ns))
	}
	if _, err := f.c.sync(ctx, key); err != nil {
		t.Fatal(err)
	}
	assertNoSharedTrigger(t, f)
}

// groupRecorder records which Pushgateway groups the controller deletes.
type groupRecorder struct {
	metrics.Nop
	groups []string
}

func (g *groupRecorder) DeleteInvokerGroup(_ context.Context, kind, namespace, name string) error {
	g.groups = append(g.groups, kind+"/"+namespace+"/"+name)
	return nil
}

func TestForeignCronJobIsNotTouched(t *testing.T) {
	foreign := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: names.CronJob("bc"), Namespace: ns}, Spec: batchv1.CronJobSpec{Schedule: "1 1 1 1 *"}}
	f := newFixture(t, append(healthyKube(), foreign), []runtime.Object{backupConfig("bc"), repository(ns), task()})
	if err := f.sync("bc"); err == nil {
		t.Fatal("sync succeeded over a CronJob Stow does not own")
	}
	bc := f.bc("bc")
	if c := condOf(t, bc, v1beta1.CronJobCreated); c.Status != v1beta1.ConditionFalse || !strings.Contains(c.Message, "not owned") {
		t.Errorf("CronJobCreated = %+v", c)
	}
	if bc.Status.Phase != v1beta1.BackupInvokerNotReady {
		t.Errorf("phase = %q", bc.Status.Phase)
	}
	if cj := f.cronJob("bc"); cj.Spec.Schedule != "1 1 1 1 *" {
		t.Errorf("foreign cronjob modified: %q", cj.Spec.Schedule)
	}
	if ev := strings.Join(f.events(), "\n"); !strings.Contains(ev, "Warning CronJob Creation Failed") {
		t.Errorf("events = %s", ev)
	}
}

func TestEventHandlersEnqueueUsers(t *testing.T) {
	other := backupConfig("other")
	other.Spec.Repository.Name = "elsewhere"
	other.Spec.Target.Ref.Name = "x"
	other.Spec.Task.Name = "custom"
	f := newFixture(t, nil, []runtime.Object{backupConfig("bc"), other, repository(ns)})
	f.refresh()
	tests := []struct {
		name string
		fire func()
		want string
	}{
		{"repository", func() { f.c.onRepository(repository(ns)) }, ns + "/bc"},
		{"pvc", func() {
			f.c.pvcs.Notify(ns, "data")
		}, ns + "/bc"},
		{"task", func() { f.c.onTask(task()) }, ns + "/bc"},
		{"restore", func() {
			f.c.onRestoreSession(&v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: ns}, Status: v1beta1.RestoreSessionStatus{PausedBackups: []string{"bc"}}})
		}, ns + "/bc"},
		{"owned cronjob", func() {
			f.c.onOwned(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns, OwnerReferences: []metav1.OwnerReference{v1beta1.OwnerRef(v1beta1.KindBackupConfiguration, "bc", backupConfig("bc").UID)}}})
		}, ns + "/bc"},
		{"shared trigger role", func() {
			f.c.onOwned(&rbacv1.Role{ObjectMeta: sharedMeta(ns)})
		}, "any"}, // one configuration of the namespace that uses it
	}
	for _, tt := range tests {
		tt.fire()
		if f.c.queue.Len() != 1 {
			t.Errorf("%s: queue length %d, want 1", tt.name, f.c.queue.Len())
			for f.c.queue.Len() > 0 {
				k, _ := f.c.queue.Get()
				f.c.queue.Done(k)
			}
			continue
		}
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
		f.c.queue.Forget(k)
		if k != tt.want && (tt.want != "any" || !strings.HasPrefix(k, ns+"/")) {
			t.Errorf("%s: enqueued %q, want %q", tt.name, k, tt.want)
		}
	}
}

func TestRepositoryStatusDoesNotRequeue(t *testing.T) {
	old := repository(ns)
	status := old.DeepCopy()
	status.Status.References = []v1beta1.InvokerReference{{Kind: v1beta1.KindBackupConfiguration, Namespace: ns, Name: "bc"}}
	if repositorySpecChanged(old, status) {
		t.Error("a status change of a Repository counts as a change for its configurations")
	}
	spec := old.DeepCopy()
	spec.Spec.Backend.StorageSecretName = "other"
	if !repositorySpecChanged(old, spec) {
		t.Error("a spec change of a Repository is not seen")
	}
	gone := old.DeepCopy()
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	if !repositorySpecChanged(old, gone) {
		t.Error("a Repository's deletion is not seen")
	}
}

// A finished backup pod still "uses" its PVC for the pvc-protection
// finalizer: when the target PVC is being deleted, the finished backup Jobs
// are deleted so the PVC can go; a running Job and other Jobs are kept.
func TestDeletedTargetReleasesFinishedJobs(t *testing.T) {
	now := metav1.Now()
	claim := pvc()
	claim.DeletionTimestamp = &now
	claim.Finalizers = []string{"kubernetes.io/pvc-protection"}
	bc := backupConfig("bc")
	job := func(name string, finished bool, lbls map[string]string) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls}}
		if finished {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		}
		return j
	}
	other := backupConfig("other")
	kube := []runtime.Object{secret(ns, password), claim, namespace(ns, nil),
		job("done", true, names.SessionLabels(bc)),
		job("running", false, names.SessionLabels(bc)),
		job("other-done", true, names.SessionLabels(other)),
	}
	f := newFixture(t, kube, []runtime.Object{bc, repository(ns), task()})
	f.mustSync("bc")
	jobs, err := f.kube.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, j := range jobs.Items {
		left = append(left, j.Name)
	}
	slices.Sort(left)
	if strings.Join(left, ",") != "other-done,running" {
		t.Errorf("jobs left = %v; want other-done, running", left)
	}
	if ev := strings.Join(f.events(), "\n"); !strings.Contains(ev, "TargetReleased") {
		t.Errorf("no TargetReleased event: %s", ev)
	}
	if got := condOf(t, f.bc("bc"), v1beta1.BackupTargetFound); got.Status != v1beta1.ConditionFalse {
		t.Errorf("target condition = %+v", got)
	}
	// The running Job finishing re-queues nothing: the configuration must
	// come back by itself to release it.
	if f.c.queue.Len() != 0 {
		return // already due
	}
	deadline := time.Now().Add(releaseRecheck + 5*time.Second)
	for f.c.queue.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // waiting on the real workqueue's delay
	}
	if f.c.queue.Len() != 1 {
		t.Errorf("configuration not re-queued to release the running Job later")
	}
}

// The cache holds CronJobs without their job template and configurations
// without managedFields field sets (trim): what the controller writes back
// must not carry those gaps. Suspending the CronJob of a configuration whose
// schedule became invalid keeps the stored template, and the status write
// sends no managedFields (the API server keeps the stored ones).
func TestWritesDoNotCarryTheTrimmedCache(t *testing.T) {
	bc := backupConfig("bc")
	bc.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}}
	f := newFixture(t, healthyKube(), []runtime.Object{bc, repository(ns), task()})
	f.mustSync("bc")
	for _, a := range f.stow.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok && a.GetSubresource() == "status" {
			if mf := u.GetObject().(*v1beta1.BackupConfiguration).ManagedFields; mf != nil {
				t.Errorf("status write sent managedFields %+v", mf)
			}
		}
	}
	if cj := f.cronJob("bc"); cj == nil || len(cj.Spec.JobTemplate.Spec.Template.Spec.Containers) == 0 || ptr.Deref(cj.Spec.Suspend, true) {
		t.Fatalf("cronjob %+v", cj)
	}

	cur := f.bc("bc")
	cur.Spec.Schedule = "every day"
	cur.Generation++
	if _, err := f.stow.StowV1beta1().BackupConfigurations(ns).Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.mustSync("bc")
	cj := f.cronJob("bc")
	if !ptr.Deref(cj.Spec.Suspend, false) {
		t.Errorf("cronjob of an invalid schedule not suspended")
	}
	if len(cj.Spec.JobTemplate.Spec.Template.Spec.Containers) == 0 {
		t.Errorf("suspending the cronjob lost its job template")
	}
}

// In a namespace being deleted nothing can be created: the configuration,
// about to be deleted with it, is neither retried nor given a status (with
// thousands of configurations each retry was a refused write).
func TestTerminatingNamespaceIsNotRetried(t *testing.T) {
	f := newFixture(t, healthyKube(), []runtime.Object{backupConfig("bc"), repository(ns), task()})
	terminating := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Message: "serviceaccounts is forbidden: namespace demo is being terminated",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace"}}}}}
	f.kube.PrependReactor("create", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating })
	if err := f.sync("bc"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	for _, w := range f.writes() {
		if strings.HasPrefix(w, "update") || strings.HasPrefix(w, "patch backupconfigurations/status") {
			t.Errorf("write %s", w)
		}
	}
	if f.c.queue.Len() != 0 {
		t.Errorf("requeued")
	}
}

// Wired through running informers: a Repository status write re-queues none
// of its configurations, a spec change all of them. (The filter once chose
// its informer by comparing Informer() results, which are new wrappers per
// call, so it never applied: 5,000 configurations re-queued on every
// status write of their Repository.)
func TestRepositoryStatusWriteRequeuesNoConfiguration(t *testing.T) {
	repo := repository(ns)
	f := newFixture(t, nil, []runtime.Object{repo, backupConfig("a"), backupConfig("b")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.sinf.Start(ctx.Done())
	f.kinf.Start(ctx.Done())
	f.sinf.WaitForCacheSync(ctx.Done())
	repos := f.sinf.Stow().V1beta1().Repositories().Lister()
	// drain takes what the informers' add events queued, until the queue
	// has stayed empty for a while.
	drain := func() int {
		n := 0
		_ = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, false, func(context.Context) (bool, error) {
			if f.c.queue.Len() == 0 {
				return true, nil
			}
			k, _ := f.c.queue.Get()
			f.c.queue.Done(k)
			f.c.queue.Forget(k)
			n++
			return false, nil
		})
		return n
	}
	drain()
	waitRepo := func(ok func(*v1beta1.Repository) bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
			r, err := repos.Repositories(ns).Get("repo")
			return err == nil && ok(r), nil
		}); err != nil {
			t.Fatalf("the informer did not see the Repository change: %v", err)
		}
	}

	r := repo.DeepCopy()
	r.Status.ReferenceCount = 2
	if _, err := f.stow.StowV1beta1().Repositories(ns).UpdateStatus(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRepo(func(r *v1beta1.Repository) bool { return r.Status.ReferenceCount == 2 })
	// The handler runs right after the store update; give it a moment to
	// show a wrong re-queue (a correct one never comes).
	_ = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 300*time.Millisecond, true, func(context.Context) (bool, error) {
		return f.c.queue.Len() > 0, nil
	})
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("a Repository status write queued %d configurations, want 0", n)
	}

	r, _ = f.stow.StowV1beta1().Repositories(ns).Get(ctx, "repo", metav1.GetOptions{})
	r.Spec.Backend.StorageSecretName = "other"
	r.Generation++
	if _, err := f.stow.StowV1beta1().Repositories(ns).Update(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRepo(func(r *v1beta1.Repository) bool { return r.Spec.Backend.StorageSecretName == "other" })
	if n := drain(); n != 2 {
		t.Errorf("a Repository spec change queued %d configurations, want 2", n)
	}
}

// A sync on a cache that has not seen the controller's own status write
// acts on nothing: from the older copy it would find the configuration not
// yet Ready, write the status again and announce "Ready" a second time.
func TestStaleCacheActsNoMore(t *testing.T) {
	orig := backupConfig("nightly")
	orig.ResourceVersion = "1"
	f := newFixture(t, healthyKube(), []runtime.Object{orig, repository(ns), task()})
	controllertest.StampResourceVersions(&f.stow.Fake, "backupconfigurations")
	f.mustSync("nightly")
	if bc := f.bc("nightly"); bc.Status.Phase != v1beta1.BackupInvokerReady || bc.ResourceVersion == "1" {
		t.Fatalf("phase %q resourceVersion %s: want Ready by a write", bc.Status.Phase, bc.ResourceVersion)
	}
	if ev := f.events(); !slices.ContainsFunc(ev, func(e string) bool { return strings.Contains(e, internal.ReasonReady) }) {
		t.Fatalf("events = %q, want Ready", ev)
	}

	f.refresh()
	if err := f.sinf.Stow().V1beta1().BackupConfigurations().Informer().GetStore().Update(orig); err != nil {
		t.Fatal(err)
	}
	f.kube.ClearActions()
	f.stow.ClearActions()
	after, err := f.c.sync(context.Background(), ns+"/nightly")
	if err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("a sync on the stale cache recorded Events: %q", ev)
	}
	if w := f.writes(); len(w) > 0 {
		t.Errorf("a sync on the stale cache wrote %v", w)
	}
	if after != internal.StaleRequeue {
		t.Errorf("requeue after %s, want %s", after, internal.StaleRequeue)
	}
	f.mustSync("nightly")
	if w := f.writes(); len(w) > 0 {
		t.Errorf("once the cache caught up, the sync wrote %v", w)
	}
}

// A Repository of another namespace that does not allow this one tells the
// configuration's writer nothing: not whether it exists, nor anything of
// its Secret (found, lacking a password, missing). Both conditions read the
// same as for a Repository that does not exist.
func TestForbiddenRepositoryTellsNothing(t *testing.T) {
	var want []v1beta1.Condition
	for _, tc := range []struct {
		name  string
		stow  []runtime.Object
		vault []runtime.Object
	}{
		{"no repository", nil, nil},
		{"secret with password", []runtime.Object{repository("vault")}, []runtime.Object{secret("vault", password)}},
		{"secret without password", []runtime.Object{repository("vault")}, []runtime.Object{secret("vault", map[string][]byte{"X": []byte("y")})}},
		{"no secret", []runtime.Object{repository("vault")}, nil},
		{"a hostPath repository (a pod setting the operator checks)", []runtime.Object{func() runtime.Object {
			r := repository("vault")
			r.Spec.Backend = v1beta1.Backend{StorageSecretName: "creds", Local: &v1beta1.LocalSpec{MountPath: "/repo",
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/vault"}}}}
			return r
		}()}, []runtime.Object{secret("vault", password)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := backupConfig("bc")
			bc.Spec.Repository.Namespace = "vault"
			f := newFixture(t, append(healthyKube(), tc.vault...), append([]runtime.Object{bc, task()}, tc.stow...))
			f.c.guard = podguard.New(podguard.Admission, f.kube) // no policy installed: any pod setting is refused, naming its object
			_ = f.sync("bc")
			got := f.bc("bc")
			var conds []v1beta1.Condition
			for _, typ := range []string{v1beta1.RepositoryFound, v1beta1.BackendSecretFound, v1beta1.ValidationPassed} {
				c := condOf(t, got, typ)
				conds = append(conds, v1beta1.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message})
			}
			if want == nil {
				want = conds
				return
			}
			if !equality.Semantic.DeepEqual(conds, want) {
				t.Errorf("conditions %+v differ from those of a Repository that does not exist: %+v", conds, want)
			}
			for _, a := range f.kube.Actions() {
				if a.GetResource().Resource == "secrets" {
					t.Errorf("read a Secret of a Repository it may not use: %v", a)
				}
			}
		})
	}
}
