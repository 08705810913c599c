package podpolicy

import (
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// PolicyName names the ValidatingAdmissionPolicy and its binding
// (deploy/admission-policy.yaml). The operator looks them up to know whether
// admission checks asks in this cluster.
const PolicyName = "stow.dev-pod-settings"

// Resources lists every resource with rules, in the policy's order.
var Resources = []string{BackupConfigurations, RestoreSessions, Repositories, Tasks, Functions}

// ClusterScoped tells whether a resource is cluster-scoped (Tasks, Functions):
// its asks need pod rights in every namespace.
func ClusterScoped(resource string) bool { return resource == Tasks || resource == Functions }

func variable(c Class) string { return "may_" + strings.ReplaceAll(string(c), "-", "_") }

// refVariable is the variable telling whether the user may get every
// object of resource (secrets, configmaps), or create pods.
func refVariable(resource string) string { return "may_get_" + resource }

// Permission is how a message names the Stow permission for class c.
func Permission(c Class) string {
	return fmt.Sprintf("%s %s.%s/%s", PermissionVerb, PermissionResource, PermissionGroup, c)
}

// inNamespace renders an authorizer check in the request's namespace, or in
// every namespace for a cluster-scoped object (Tasks, Functions), whose
// request has no namespace at all: CEL fails on the missing key.
func inNamespace(resource, check string) string {
	return fmt.Sprintf("(has(request.namespace) && request.namespace != '' ? %s.namespace(request.namespace)%s : %s%s)", resource, check, resource, check)
}

// Policy returns the ValidatingAdmissionPolicy and binding that refuse an
// object with an ask unless the requesting user may create pods in its
// namespace (in every namespace, for Tasks and Functions) or holds the Stow
// permission for the ask's class. Updates are checked like creates: whoever
// writes an object that asks must be entitled to the ask.
func Policy() (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	vars := []admissionv1.Variable{{
		Name:       "may_create_pods",
		Expression: inNamespace("authorizer.group('').resource('pods')", ".check('create').allowed()"),
	}}
	for _, c := range Classes {
		vars = append(vars, admissionv1.Variable{
			Name: variable(c),
			Expression: "variables.may_create_pods || " + inNamespace(fmt.Sprintf("authorizer.group('%s').resource('%s')", PermissionGroup, PermissionResource),
				fmt.Sprintf(".name('%s').check('%s').allowed()", c, PermissionVerb)),
		})
	}
	// Who may create pods, or get every Secret (ConfigMap) of the
	// namespace, may name any: no check per name.
	for _, c := range []Class{Secrets, ConfigMaps} {
		vars = append(vars, admissionv1.Variable{
			Name:       refVariable(string(c)),
			Expression: "variables.may_create_pods || " + inNamespace(fmt.Sprintf("authorizer.group('').resource('%s')", c), ".check('get').allowed()"),
		})
	}
	var validations []admissionv1.Validation
	for _, r := range Rules {
		where := "in namespace ' + request.namespace + '"
		if ClusterScoped(r.Resource) {
			where = "in every namespace"
		}
		if r.Ref != nil {
			validations = append(validations, refValidation(r, where))
			continue
		}
		msg := fmt.Sprintf("%s asks for %s: ' + request.userInfo.username + ' may not create pods %s and lacks the Stow permission %s (docs/security.md)",
			r.Field(), r.What, where, Permission(r.Class))
		validations = append(validations, admissionv1.Validation{
			Expression:        fmt.Sprintf("request.resource.resource != '%s' || !(%s) || variables.%s", r.Resource, r.CEL(), variable(r.Class)),
			MessageExpression: "'" + msg + "'",
			Message:           fmt.Sprintf("%s asks for %s, which needs the right to create pods or the Stow permission %s", r.Field(), r.What, Permission(r.Class)),
			Reason:            ptr.To(metav1.StatusReasonForbidden),
		})
	}
	labels := map[string]string{"app.kubernetes.io/name": "stow"}
	policy := &admissionv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Labels: labels},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{PermissionGroup}, APIVersions: []string{"*"},
						Resources: append([]string(nil), Resources...)},
				},
			}}},
			// An object being deleted only loses finalizers.
			MatchConditions: []admissionv1.MatchCondition{{Name: "not-being-deleted", Expression: "!has(object.metadata.deletionTimestamp)"}},
			Variables:       vars,
			Validations:     validations,
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: PolicyName, Labels: labels},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        PolicyName,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	return policy, binding
}

// refValidation refuses an object whose field (rule r) names a Secret or
// ConfigMap the requesting user may not get, unless they may create pods
// (which could read it anyway): the Job's pod, made with the operator's
// rights, would read it for them. The Stow permission does not grant this.
// Names are checked one by one only when the user may not get every object
// of that kind.
func refValidation(r Rule, where string) admissionv1.Validation {
	kind := r.Ref.Kind()
	names := ""
	if n := r.namesCEL(); n != "" {
		names = " (it names ' + " + n + " + ')"
	}
	msg := fmt.Sprintf("%s names a %s that ' + request.userInfo.username + ' may not get %s%s, nor may they create pods there: the Stow Job would read it for them (docs/security.md)",
		r.Field(), kind, where, names)
	return admissionv1.Validation{
		Expression:        fmt.Sprintf("request.resource.resource != '%s' || variables.%s || !(%s)", r.Resource, refVariable(r.Ref.Resource), r.deniedCEL()),
		MessageExpression: "'" + msg + "'",
		Message:           fmt.Sprintf("%s names a %s, which needs the right to get it or to create pods", r.Field(), kind),
		Reason:            ptr.To(metav1.StatusReasonForbidden),
	}
}
