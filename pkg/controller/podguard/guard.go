// Package podguard is the operator's own check of pod settings (defense in
// depth behind the admission policy, docs/security.md): before a Job is made
// from objects that ask for more than a restricted pod, the operator makes
// sure someone entitled asked.
//
// The operator cannot tell who wrote an object; the API server can, at
// admission. So in the default mode the operator trusts an ask only when the
// admission policy generated from pkg/podpolicy is installed unchanged, bound
// with Deny, and the object was last written after the binding was made:
// then the policy checked the writer. Otherwise the object is Invalid, with a
// reason naming the field, and no pod runs.
package podguard

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/podpolicy"
)

// Mode is how the operator treats asks (flag --pod-settings).
type Mode string

const (
	// Admission: asks run when the admission policy checked their writer.
	Admission Mode = "admission"
	// Trust: asks run unchecked (a cluster where only admins write Stow objects).
	Trust Mode = "trust"
	// Refuse: no ask ever runs.
	Refuse Mode = "refuse"
)

// ParseMode checks a --pod-settings value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Admission, Trust, Refuse:
		return m, nil
	}
	return "", fmt.Errorf("--pod-settings must be admission, trust or refuse, not %q", s)
}

// Object is one object a Job is made from, with its resource (plural).
type Object struct {
	Resource string
	Obj      metav1.Object
}

// Guard answers whether objects' asks may run. Safe for concurrent use.
type Guard struct {
	mode Mode
	kube kubernetes.Interface
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time
	since   time.Time // binding creation; zero: policy not usable
	why     string    // why the policy is not usable
}

// recheck is how long the policy's state is cached.
const recheck = 30 * time.Second

// New returns a Guard; kube is used only in Admission mode.
func New(mode Mode, kube kubernetes.Interface) *Guard {
	return &Guard{mode: mode, kube: kube, now: time.Now}
}

// Check returns "" when the asks of objs may run, else a one-line reason
// naming the first refused field.
func (g *Guard) Check(ctx context.Context, objs ...Object) string {
	if g == nil {
		return ""
	}
	for _, o := range objs {
		if o.Obj == nil || reflect.ValueOf(o.Obj).IsNil() {
			continue
		}
		asks, err := podpolicy.Asks(o.Resource, o.Obj)
		if err != nil {
			return fmt.Sprintf("cannot read the pod settings of %s %s: %v", o.Resource, o.Obj.GetName(), err)
		}
		asks = slices.DeleteFunc(asks, func(a podpolicy.Ask) bool { return a.AdmissionOnly })
		if len(asks) == 0 {
			continue
		}
		what := fmt.Sprintf("%s of %s %s", asks[0], kindName(o.Resource), name(o.Obj))
		switch g.mode {
		case Trust:
			continue
		case Refuse:
			return what + ": the operator runs no pod settings beyond a restricted pod (--pod-settings=refuse)"
		}
		since, why := g.policy(ctx)
		if why != "" {
			return what + ": " + why
		}
		if last := LastWrite(o.Obj); !last.After(since) {
			return fmt.Sprintf("%s: it was last written (%s) before the admission policy %s was installed (%s), so nobody checked who asked; write it again to have it checked",
				what, last.UTC().Format(time.RFC3339), podpolicy.PolicyName, since.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

var kinds = map[string]string{
	podpolicy.BackupConfigurations: "BackupConfiguration", podpolicy.RestoreSessions: "RestoreSession",
	podpolicy.Repositories: "Repository", podpolicy.Tasks: "Task", podpolicy.Functions: "Function",
}

func kindName(resource string) string {
	if k, ok := kinds[resource]; ok {
		return k
	}
	return resource
}

func name(o metav1.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// LastWrite is when the object itself (not its status) was last written:
// the newest managedFields time of the main resource, else its creation.
func LastWrite(o metav1.Object) time.Time {
	t := o.GetCreationTimestamp().Time
	for _, mf := range o.GetManagedFields() {
		if mf.Subresource == "" && mf.Time != nil && mf.Time.After(t) {
			t = mf.Time.Time
		}
	}
	return t
}

// policy reports since when the admission policy checks writers, or why it
// does not.
func (g *Guard) policy(ctx context.Context) (time.Time, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); now.Sub(g.checked) < recheck && !g.checked.IsZero() {
		return g.since, g.why
	}
	g.since, g.why = g.read(ctx)
	g.checked = g.now()
	return g.since, g.why
}

func (g *Guard) read(ctx context.Context) (time.Time, string) {
	missing := fmt.Sprintf("the admission policy %s that checks who may ask for it is not installed (kubectl apply -f deploy/admission-policy.yaml; or start the operator with --pod-settings=trust)", podpolicy.PolicyName)
	want, _ := podpolicy.Policy()
	p, err := g.kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, podpolicy.PolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return time.Time{}, missing
	}
	if err != nil {
		return time.Time{}, fmt.Sprintf("cannot read the admission policy %s: %v", podpolicy.PolicyName, err)
	}
	if why := differs(p, want); why != "" {
		return time.Time{}, fmt.Sprintf("the installed admission policy %s is not this operator's (%s); apply deploy/admission-policy.yaml of this version", podpolicy.PolicyName, why)
	}
	b, err := g.kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, podpolicy.PolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return time.Time{}, missing
	}
	if err != nil {
		return time.Time{}, fmt.Sprintf("cannot read the admission policy binding %s: %v", podpolicy.PolicyName, err)
	}
	if b.Spec.PolicyName != podpolicy.PolicyName || narrows(b.Spec.MatchResources) || b.Spec.ParamRef != nil || !hasDeny(b.Spec.ValidationActions) {
		return time.Time{}, fmt.Sprintf("the admission policy binding %s does not deny for every object", podpolicy.PolicyName)
	}
	since := b.CreationTimestamp.Time
	if p.CreationTimestamp.After(since) {
		since = p.CreationTimestamp.Time
	}
	if p.Generation > 1 || b.Generation > 1 {
		// Changed after creation: its last change is not recorded, be safe.
		for _, t := range []time.Time{LastWrite(p), LastWrite(b)} {
			if t.After(since) {
				since = t
			}
		}
	}
	return since, ""
}

// narrows tells whether a binding's matchResources leaves out some objects
// the policy matches (the API server may fill in empty selectors).
func narrows(m *admissionv1.MatchResources) bool {
	if m == nil {
		return false
	}
	empty := func(s *metav1.LabelSelector) bool {
		return s == nil || len(s.MatchLabels)+len(s.MatchExpressions) == 0
	}
	return len(m.ResourceRules) > 0 || len(m.ExcludeResourceRules) > 0 || !empty(m.NamespaceSelector) || !empty(m.ObjectSelector)
}

func hasDeny(actions []admissionv1.ValidationAction) bool {
	for _, a := range actions {
		if a == admissionv1.Deny {
			return true
		}
	}
	return false
}

// differs names the first difference of an installed policy from want.
func differs(got, want *admissionv1.ValidatingAdmissionPolicy) string {
	if got.Spec.FailurePolicy == nil || *got.Spec.FailurePolicy != admissionv1.Fail {
		return "failurePolicy is not Fail"
	}
	gm, wm := got.Spec.MatchConstraints, want.Spec.MatchConstraints
	if gm == nil || len(gm.ResourceRules) != 1 || len(gm.ExcludeResourceRules) > 0 ||
		!slices.Equal(gm.ResourceRules[0].Resources, wm.ResourceRules[0].Resources) ||
		!slices.Equal(gm.ResourceRules[0].Operations, wm.ResourceRules[0].Operations) ||
		!slices.Equal(gm.ResourceRules[0].APIGroups, wm.ResourceRules[0].APIGroups) ||
		gm.NamespaceSelector != nil && len(gm.NamespaceSelector.MatchLabels)+len(gm.NamespaceSelector.MatchExpressions) > 0 ||
		gm.ObjectSelector != nil && len(gm.ObjectSelector.MatchLabels)+len(gm.ObjectSelector.MatchExpressions) > 0 {
		return "it matches other objects"
	}
	if !slices.Equal(got.Spec.MatchConditions, want.Spec.MatchConditions) {
		return "its matchConditions differ"
	}
	if len(got.Spec.Validations) != len(want.Spec.Validations) || len(got.Spec.Variables) != len(want.Spec.Variables) {
		return fmt.Sprintf("%d validations, want %d", len(got.Spec.Validations), len(want.Spec.Validations))
	}
	for i := range want.Spec.Validations {
		if got.Spec.Validations[i].Expression != want.Spec.Validations[i].Expression {
			return fmt.Sprintf("validation %d differs", i)
		}
	}
	for i := range want.Spec.Variables {
		if got.Spec.Variables[i] != want.Spec.Variables[i] {
			return fmt.Sprintf("variable %s differs", want.Spec.Variables[i].Name)
		}
	}
	return ""
}

// Session lists the objects a session's Job is made from: the invoker
// (resource backupconfigurations or restoresessions), its Repository, Task
// and the Task's Functions.
func Session(resource string, invoker metav1.Object, repo metav1.Object, task metav1.Object, fns map[string]*v1beta1.Function) []Object {
	out := []Object{{resource, invoker}, {podpolicy.Repositories, repo}, {podpolicy.Tasks, task}}
	names := make([]string, 0, len(fns))
	for n := range fns {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, Object{podpolicy.Functions, fns[n]})
	}
	return out
}
