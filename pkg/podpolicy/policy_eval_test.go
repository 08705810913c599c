package podpolicy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// grant is one permission of the fake authorizer; "" namespace or name
// means every one.
type grant struct{ verb, group, resource, namespace, name string }

// authz is the fake CEL authorizer: the chain authorizer.group(g).resource(r)
// [.namespace(n)][.name(x)].check(v).allowed() as the API server offers it.
type authz struct {
	grants                                 []grant
	group, resource, namespace, name, verb string
	// checks counts the checks of one expression: the API server allows two
	// (each costs 350000 of a 1000000 limit per expression).
	checks *int
}

var authzType = cel.OpaqueType("fake.Authorizer")

func (a authz) ConvertToNative(reflect.Type) (any, error) { return nil, fmt.Errorf("no conversion") }
func (a authz) ConvertToType(ref.Type) ref.Val            { return types.NewErr("no conversion") }
func (a authz) Equal(ref.Val) ref.Val                     { return types.False }
func (a authz) Type() ref.Type                            { return authzType }
func (a authz) Value() any                                { return a }

func (a authz) allowed() bool {
	for _, g := range a.grants {
		if g.verb == a.verb && g.group == a.group && g.resource == a.resource &&
			(g.namespace == "" || g.namespace == a.namespace) && (g.name == "" || g.name == a.name) {
			return true
		}
	}
	return false
}

// authzEnv is the environment of validations and variables; with
// withAuthorizer false, that of message expressions, which the API server
// evaluates without an authorizer.
func authzEnv(t *testing.T, withAuthorizer bool) *cel.Env {
	t.Helper()
	if !withAuthorizer {
		env, err := cel.NewEnv(cel.Variable("object", cel.DynType), cel.Variable("request", cel.DynType), cel.Variable("variables", cel.DynType), ext.Strings())
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	step := func(name string, set func(*authz, string)) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("fake_"+name, []*cel.Type{authzType, cel.StringType}, authzType,
			cel.BinaryBinding(func(l, r ref.Val) ref.Val {
				a := l.(authz)
				set(&a, string(r.(types.String)))
				return a
			})))
	}
	env, err := cel.NewEnv(
		cel.Variable("object", cel.DynType), cel.Variable("request", cel.DynType), cel.Variable("variables", cel.DynType),
		cel.Variable("authorizer", authzType),
		ext.Strings(),
		step("group", func(a *authz, s string) { a.group = s }),
		step("resource", func(a *authz, s string) { a.resource = s }),
		step("namespace", func(a *authz, s string) { a.namespace = s }),
		step("name", func(a *authz, s string) { a.name = s }),
		step("check", func(a *authz, s string) { a.verb = s; *a.checks++ }),
		cel.Function("allowed", cel.MemberOverload("fake_allowed", []*cel.Type{authzType}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Bool(v.(authz).allowed()) }))),
	)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func eval(t *testing.T, env *cel.Env, expr string, vars map[string]any) any {
	t.Helper()
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatalf("compile %s: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return out.Value()
}

// evalMessage compiles (which must succeed) and evaluates a message
// expression; an evaluation error is returned (the API server ignores it
// for a validation that passed).
func evalMessage(env *cel.Env, expr string, vars map[string]any) (string, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return "", fmt.Errorf("compile %s: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		return "", err
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return "", err
	}
	msg, _ := out.Value().(string)
	return msg, nil
}

// admit evaluates the generated policy as the API server would for a user
// with grants writing obj (resource, namespace ns: "" for cluster-scoped):
// it returns the messages of the failed validations.
func admit(t *testing.T, resource, ns string, obj any, grants []grant) []string {
	t.Helper()
	env, msgEnv := authzEnv(t, true), authzEnv(t, false)
	p, _ := Policy()
	req := map[string]any{"resource": map[string]any{"group": "stow.dev", "resource": resource}, "userInfo": map[string]any{"username": "tenant"}}
	if ns != "" {
		req["namespace"] = ns
	}
	checks := 0
	vars := map[string]any{"object": jsonMap(t, obj), "request": req, "authorizer": authz{grants: grants, checks: &checks}}
	variables := map[string]any{}
	vars["variables"] = variables
	limit := func(what string) {
		if checks > 2 {
			t.Errorf("%s makes %d authorization checks; the API server allows 2 per expression", what, checks)
		}
		checks = 0
	}
	for _, v := range p.Spec.Variables {
		variables[v.Name] = eval(t, env, v.Expression, vars)
		limit("variable " + v.Name)
	}
	var refused []string
	for _, v := range p.Spec.Validations {
		if _, iss := msgEnv.Compile(v.MessageExpression); iss.Err() != nil {
			t.Fatalf("message expression does not compile without an authorizer: %v", iss.Err())
		}
		ok := eval(t, env, v.Expression, vars) == true
		limit(v.Message)
		// Message expressions run for every validation, without an
		// authorizer; they must compile and evaluate there.
		msg, err := evalMessage(msgEnv, v.MessageExpression, map[string]any{"object": vars["object"], "request": req, "variables": variables})
		switch {
		case err != nil && !ok:
			t.Errorf("message of a refusal: %v", err)
		case !ok:
			refused = append(refused, msg)
		}
	}
	return refused
}

var (
	canCreatePods = grant{"create", "", "pods", "team", ""}
	getDBAdmin    = grant{"get", "", "secrets", "team", "db-admin"}
	getAllSecrets = grant{"get", "", "secrets", "", ""}
)

// A field naming a Secret or ConfigMap is admitted only from a writer who
// may get that very object, or create pods; the refusal names the field,
// the object and the user. The Stow permission does not grant it.
func TestPolicyReferencesNeedGet(t *testing.T) {
	envFromSecret := &v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Container: &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "x"},
			{Name: "REST_SERVER_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db-admin"}, Key: "password"}}},
		}},
	}}}
	stowAll := grant{PermissionVerb, PermissionGroup, PermissionResource, "team", ""}
	for _, tc := range []struct {
		name   string
		grants []grant
		refuse bool
	}{
		{"no rights", nil, true},
		{"the Stow permission", []grant{stowAll}, true},
		{"get on another Secret", []grant{{"get", "", "secrets", "team", "other"}}, true},
		{"get on it in another namespace", []grant{{"get", "", "secrets", "elsewhere", "db-admin"}}, true},
		{"get on it", []grant{getDBAdmin}, false},
		{"get on every Secret of the namespace", []grant{{"get", "", "secrets", "team", ""}}, false},
		{"create pods", []grant{canCreatePods}, false},
	} {
		got := admit(t, BackupConfigurations, "team", envFromSecret, tc.grants)
		if tc.refuse != (len(got) > 0) {
			t.Errorf("%s: refusals %q", tc.name, got)
			continue
		}
		if tc.refuse {
			want := "spec.runtimeSettings.container.env[*].valueFrom.secretKeyRef names a Secret that tenant may not get in namespace team (it names db-admin), nor may they create pods there"
			if len(got) != 1 || !strings.Contains(got[0], want) {
				t.Errorf("%s: refusal %q, want one saying %q", tc.name, got, want)
			}
		}
	}

	// Every reference field of every kind, refused without rights.
	cm := corev1.LocalObjectReference{Name: "cfg"}
	sec := corev1.LocalObjectReference{Name: "db-admin"}
	all := &v1beta1.RestoreSession{Spec: v1beta1.RestoreSessionSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Pod: &v1beta1.PodRuntimeSettings{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}},
		Container: &v1beta1.ContainerRuntimeSettings{
			Env: []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: cm, Key: "k"}}}},
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: sec}, Prefix: "APP_"},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: cm}, Prefix: "APP_"}},
		},
	}}}
	got := strings.Join(admit(t, RestoreSessions, "team", all, nil), "\n")
	for _, want := range []string{"env[*].valueFrom.configMapKeyRef names a ConfigMap that tenant may not get in namespace team (it names cfg)",
		"envFrom[*].secretRef names a Secret that tenant may not get in namespace team (it names db-admin)",
		"envFrom[*].configMapRef names a ConfigMap that tenant may not get in namespace team (it names cfg)",
		"imagePullSecrets[*] names a Secret that tenant may not get in namespace team (it names regcred)"} {
		if !strings.Contains(got, want) {
			t.Errorf("restore refusals lack %q:\n%s", want, got)
		}
	}
	if got := admit(t, RestoreSessions, "team", all, []grant{getAllSecrets, {"get", "", "configmaps", "team", "cfg"}}); len(got) != 0 {
		t.Errorf("a user who may get them all is refused: %q", got)
	}

	repo := &v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "repo-secret", Local: &v1beta1.LocalSpec{
		MountPath: "/repo", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: sec}},
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		}}}}}}}
	got = strings.Join(admit(t, Repositories, "team", repo, []grant{{"get", "", "secrets", "team", "repo-secret"}}), "\n")
	for _, want := range []string{"spec.backend.local.projected.sources[*].secret names a Secret that tenant may not get in namespace team (it names db-admin)",
		"spec.backend.local.projected.sources[*].serviceAccountToken asks for a ServiceAccount token in the pod"} {
		if !strings.Contains(got, want) {
			t.Errorf("repository refusals lack %q:\n%s", want, got)
		}
	}
	if got := admit(t, Repositories, "team", repo, []grant{canCreatePods}); len(got) != 0 {
		t.Errorf("a pod creator is refused: %q", got)
	}

	// Cluster-scoped Tasks and Functions: the reference is resolved in
	// every namespace that uses them, so get is needed in all of them.
	task := &v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-admin"}}}}}}
	fn := &v1beta1.Function{Spec: v1beta1.FunctionSpec{Image: "x", RuntimeSettings: &v1beta1.ContainerRuntimeSettings{
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: sec}}}}}}
	for res, obj := range map[string]any{Tasks: task, Functions: fn} {
		got := admit(t, res, "", obj, []grant{getDBAdmin})
		if len(got) != 1 || !strings.Contains(got[0], "names a Secret that tenant may not get in every namespace (it names db-admin)") {
			t.Errorf("%s with get in one namespace: %q", res, got)
		}
		if got := admit(t, res, "", obj, []grant{getAllSecrets}); len(got) != 0 {
			t.Errorf("%s with get everywhere: %q", res, got)
		}
	}
}

// The other rules still refuse and admit as before through the same
// evaluation (the policy's variables and messages compile and run).
func TestPolicyClassesStillChecked(t *testing.T) {
	bc := &v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Pod: &v1beta1.PodRuntimeSettings{NodeName: "n"}}}}
	got := admit(t, BackupConfigurations, "team", bc, nil)
	if len(got) != 1 || !strings.Contains(got[0], "spec.runtimeSettings.pod.nodeName asks for a node, bypassing the scheduler: tenant may not create pods in namespace team and lacks the Stow permission use podsettings.stow.dev/placement") {
		t.Errorf("nodeName: %q", got)
	}
	if got := admit(t, BackupConfigurations, "team", bc, []grant{{PermissionVerb, PermissionGroup, PermissionResource, "team", string(Placement)}}); len(got) != 0 {
		t.Errorf("nodeName with the permission: %q", got)
	}
	if got := admit(t, BackupConfigurations, "team", &v1beta1.BackupConfiguration{}, nil); len(got) != 0 {
		t.Errorf("a plain configuration: %q", got)
	}
}

// A Repository's storage Secret is checked against its writer: the Job sends
// its credentials to whatever backend the Repository names (a REST server
// of the writer's gets REST_SERVER_* as basic auth), so a writer who may
// not get the Secret could otherwise read it through Stow.
func TestPolicyStorageSecretNeedsGet(t *testing.T) {
	repo := &v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "db-admin",
		Rest: &v1beta1.RestServerSpec{URL: "http://attacker.example:8000/r"}}}}
	got := admit(t, Repositories, "team", repo, nil)
	want := "spec.backend.storageSecretName names a Secret that tenant may not get in namespace team, nor may they create pods there"
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("refusals %q, want one saying %q", got, want)
	}
	for name, grants := range map[string][]grant{"get on it": {getDBAdmin}, "get on every Secret": {getAllSecrets}, "create pods": {canCreatePods}} {
		if got := admit(t, Repositories, "team", repo, grants); len(got) != 0 {
			t.Errorf("%s: refused %q", name, got)
		}
	}
}
