package backupconfiguration

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// The trigger pod runs `stow create-backupsession`, which reads its
// BackupConfiguration and creates a BackupSession. Its identity is one of:
//
//   - identityUser: spec.runtimeSettings.pod.serviceAccountName; Stow
//     creates no RBAC;
//   - identityNamespace (the default): the namespace's ServiceAccount, Role
//     and RoleBinding names.NamespaceTrigger, shared by the triggers of all
//     configurations of the namespace. Three objects per namespace instead of
//     three per configuration: 5,000 configurations no longer cost 15,000
//     writes (docs/performance.md). The Role grants get on the namespace's
//     BackupConfigurations and create on BackupSessions. Create could never
//     be narrowed to one configuration by RBAC (it has no resourceNames for
//     create), so what a trigger may start is unchanged: a session of any
//     configuration of its namespace, as before. It may now also read the
//     other configurations of its namespace (specs, which name Secrets but
//     hold no secret values); anyone who may run pods in the namespace could
//     already use every per-configuration trigger ServiceAccount there.
//     docs/performance.md ("Trigger identity") has the full argument;
//   - identityOwn: bc's own ServiceAccount, Role (get on bc alone) and
//     RoleBinding names.TriggerServiceAccount(bc), owned by bc, as before:
//     for a configuration that sets serviceAccountAnnotations, since
//     annotations of one configuration must not land on a shared account.
type triggerIdentity int

const (
	identityNamespace triggerIdentity = iota
	identityOwn
	identityUser
)

func triggerIdentityOf(bc *v1beta1.BackupConfiguration) triggerIdentity {
	p := bc.Spec.RuntimeSettings.Pod
	switch {
	case p != nil && p.ServiceAccountName != "":
		return identityUser
	case p != nil && len(p.ServiceAccountAnnotations) > 0:
		return identityOwn
	}
	return identityNamespace
}

// sharedLabels mark the namespace's trigger objects as Stow's (the label
// selector of the operator's caches) without naming a configuration.
func sharedLabels() map[string]string {
	return map[string]string{
		v1beta1.LabelComponent:   v1beta1.ComponentBackup,
		v1beta1.LabelManagedBy:   v1beta1.ManagedByStow,
		v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration,
	}
}

func sharedMeta(ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: names.NamespaceTrigger, Namespace: ns, Labels: sharedLabels()}
}

func sharedRole(ns string) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: sharedMeta(ns),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1beta1.GroupName}, Resources: []string{"backupconfigurations"}, Verbs: []string{"get"}},
			{APIGroups: []string{v1beta1.GroupName}, Resources: []string{"backupsessions"}, Verbs: []string{"create"}},
		},
	}
}

func sharedRoleBinding(ns string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: sharedMeta(ns),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: names.NamespaceTrigger},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: names.NamespaceTrigger, Namespace: ns}},
	}
}

// isStows reports whether obj carries Stow's managed-by label: the shared
// objects have no owner, so the label is what makes them Stow's to change.
func isStows(obj metav1.Object) bool {
	return obj.GetLabels()[v1beta1.LabelManagedBy] == v1beta1.ManagedByStow
}

// ensureSharedTrigger creates or repairs the namespace's trigger
// ServiceAccount, Role and RoleBinding. Read from the caches, so with all
// three in place it issues no request.
func (c *Controller) ensureSharedTrigger(ctx context.Context, ns string) error {
	name := names.NamespaceTrigger
	notStows := func(kind string) error {
		return fmt.Errorf("%s %s/%s exists and is not managed by Stow (label %s=%s)", kind, ns, name, v1beta1.LabelManagedBy, v1beta1.ManagedByStow)
	}

	sa, err := getOrCreate(ctx, c.sas.ServiceAccounts(ns).Get, c.kube.CoreV1().ServiceAccounts(ns), &corev1.ServiceAccount{ObjectMeta: sharedMeta(ns)})
	if err != nil {
		return fmt.Errorf("serviceaccount %s/%s: %w", ns, name, err)
	}
	if !isStows(sa) {
		return notStows("serviceaccount")
	}

	want := sharedRole(ns)
	role, err := getOrCreate(ctx, c.roles.Roles(ns).Get, c.kube.RbacV1().Roles(ns), want)
	if err != nil {
		return fmt.Errorf("role %s/%s: %w", ns, name, err)
	}
	if !isStows(role) {
		return notStows("role")
	}
	if !equality.Semantic.DeepEqual(role.Rules, want.Rules) {
		upd := role.DeepCopy()
		upd.Rules = want.Rules
		if _, err := c.kube.RbacV1().Roles(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update role %s/%s: %v", ns, name, err)
		}
	}

	wantRB := sharedRoleBinding(ns)
	rb, err := getOrCreate(ctx, c.bindings.RoleBindings(ns).Get, c.kube.RbacV1().RoleBindings(ns), wantRB)
	if err != nil {
		return fmt.Errorf("rolebinding %s/%s: %w", ns, name, err)
	}
	if !isStows(rb) {
		return notStows("rolebinding")
	}
	return c.syncRoleBinding(ctx, rb, wantRB)
}

// sharedTriggerUser returns a configuration of ns, other than the one with
// UID except, that uses the namespace's trigger identity and is not being
// deleted, or nil.
func (c *Controller) sharedTriggerUser(ns string, except types.UID) *v1beta1.BackupConfiguration {
	bcs, _ := c.bcs.BackupConfigurations(ns).List(labels.Everything())
	for _, bc := range bcs {
		if bc.UID != except && bc.DeletionTimestamp == nil && triggerIdentityOf(bc) == identityNamespace {
			return bc
		}
	}
	return nil
}

// releaseSharedTrigger deletes the trigger objects of namespace ns when no
// configuration there other than the one with UID except (being deleted,
// or no longer using them; "" for none) uses them. A configuration created
// meanwhile is re-queued by the deletion events and creates them again.
func (c *Controller) releaseSharedTrigger(ctx context.Context, ns string, except types.UID) error {
	name := names.NamespaceTrigger
	_, errSA := c.sas.ServiceAccounts(ns).Get(name)
	_, errRole := c.roles.Roles(ns).Get(name)
	_, errRB := c.bindings.RoleBindings(ns).Get(name)
	if apierrors.IsNotFound(errSA) && apierrors.IsNotFound(errRole) && apierrors.IsNotFound(errRB) {
		return nil // the usual case of a namespace without them: no list
	}
	if c.sharedTriggerUser(ns, except) != nil {
		return nil
	}
	type deleter struct {
		kind string
		get  func() (metav1.Object, error)
		del  func() error
	}
	for _, d := range []deleter{
		{"rolebinding", func() (metav1.Object, error) { return c.bindings.RoleBindings(ns).Get(name) },
			func() error { return c.kube.RbacV1().RoleBindings(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
		{"role", func() (metav1.Object, error) { return c.roles.Roles(ns).Get(name) },
			func() error { return c.kube.RbacV1().Roles(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
		{"serviceaccount", func() (metav1.Object, error) { return c.sas.ServiceAccounts(ns).Get(name) },
			func() error { return c.kube.CoreV1().ServiceAccounts(ns).Delete(ctx, name, metav1.DeleteOptions{}) }},
	} {
		obj, err := d.get()
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s %s/%s: %v", d.kind, ns, name, err)
		}
		if !isStows(obj) || metav1.GetControllerOf(obj) != nil {
			continue
		}
		if err := d.del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s/%s: %v", d.kind, ns, name, err)
		}
	}
	return nil
}
