package podpolicy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// The CEL of every rule (what the admission policy evaluates) agrees with
// the Go check (what the operator evaluates) on objects with and without
// each ask, evaluated with cel-go as the API server does.
func TestCELAgreesWithGo(t *testing.T) {
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string][]any{
		BackupConfigurations: {
			&v1beta1.BackupConfiguration{},
			&v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{
				RuntimeSettings: v1beta1.RuntimeSettings{
					Pod: &v1beta1.PodRuntimeSettings{
						SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0)), RunAsNonRoot: ptr.To(false), FSGroup: ptr.To(int64(1)),
							Sysctls: []corev1.Sysctl{{Name: "a", Value: "b"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}},
						ServiceAccountName: "x", NodeName: "n", AutomountServiceAccountToken: ptr.To(true),
						Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					},
					Container: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
						Privileged: ptr.To(true), AllowPrivilegeEscalation: ptr.To(true), RunAsUser: ptr.To(int64(0)),
						Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}, ProcMount: ptr.To(corev1.UnmaskedProcMount)}},
				},
				Hooks: &v1beta1.BackupHooks{PreBackup: &v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"x"}}}},
			}},
			&v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
				Pod: &v1beta1.PodRuntimeSettings{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "r"}}},
				Container: &v1beta1.ContainerRuntimeSettings{
					Env: []corev1.EnvVar{{Name: "A", Value: "a"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "C", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}},
						{Name: "D", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}},
					EnvFrom: []corev1.EnvFromSource{{Prefix: "X_", SecretRef: &corev1.SecretEnvSource{}}, {ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}},
				},
			}}},
			&v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
				Container: &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "A", Value: "a"}}, EnvFrom: []corev1.EnvFromSource{}}}}},
			&v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
				Pod: &v1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, AutomountServiceAccountToken: ptr.To(false)},
				Container: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
					Privileged: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, ProcMount: ptr.To(corev1.DefaultProcMount)}},
			}}},
		},
		Repositories: {
			&v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}}},
			&v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}}},
			&v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{S3: &v1beta1.S3Spec{Bucket: "b"}}}},
			&v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "s"}, CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "s"}},
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{DownwardAPI: &corev1.DownwardAPIProjection{}}, {ConfigMap: &corev1.ConfigMapProjection{}}}}}}}}},
		},
		Tasks: {
			&v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{{Name: "a"}, {Name: "b", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}}},
			&v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{{Name: "a"}}}},
			&v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}}, {Secret: &corev1.SecretProjection{}}}}}},
				{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}}},
			&v1beta1.Task{},
		},
		Functions: {
			&v1beta1.Function{Spec: v1beta1.FunctionSpec{Ports: []corev1.ContainerPort{{ContainerPort: 1}, {ContainerPort: 2, HostPort: 2}}}},
			&v1beta1.Function{Spec: v1beta1.FunctionSpec{Ports: []corev1.ContainerPort{{ContainerPort: 1}}}},
			&v1beta1.Function{Spec: v1beta1.FunctionSpec{RuntimeSettings: &v1beta1.ContainerRuntimeSettings{
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}}},
		},
	}
	asked := map[string]bool{}
	for res, objs := range objects {
		for i, o := range objs {
			m := jsonMap(t, o)
			for _, r := range RulesFor(res) {
				want := match(m, strings.Split(r.Path, "."), r.Test)
				ast, iss := env.Compile(r.CEL())
				if iss.Err() != nil {
					t.Fatalf("%s: %v", r.CEL(), iss.Err())
				}
				prg, err := env.Program(ast)
				if err != nil {
					t.Fatal(err)
				}
				out, _, err := prg.Eval(map[string]any{"object": m})
				if err != nil {
					t.Fatalf("%s %s object %d: %v", res, r.Field(), i, err)
				}
				if got := out.Value() == true; got != want {
					t.Errorf("%s %s object %d: CEL %v, Go %v", res, r.Field(), i, got, want)
				}
				asked[res+" "+r.Path] = asked[res+" "+r.Path] || want
			}
		}
	}
	// Every rule of BackupConfigurations but the pod-level ones not set
	// above was seen asking at least once.
	for _, k := range []string{"backupconfigurations spec.runtimeSettings.container.securityContext.procMount", "functions spec.ports[].hostPort", "tasks spec.volumes[].hostPath", "repositories spec.backend.local.hostPath",
		"backupconfigurations spec.runtimeSettings.container.env[].valueFrom.secretKeyRef", "backupconfigurations spec.runtimeSettings.container.env[].valueFrom.configMapKeyRef",
		"backupconfigurations spec.runtimeSettings.container.envFrom[].secretRef", "backupconfigurations spec.runtimeSettings.container.envFrom[].configMapRef",
		"backupconfigurations spec.runtimeSettings.pod.imagePullSecrets[]", "repositories spec.backend.local.secret", "repositories spec.backend.local.csi.nodePublishSecretRef",
		"repositories spec.backend.local.projected.sources[].configMap", "tasks spec.volumes[].projected.sources[].serviceAccountToken",
		"tasks spec.volumes[].projected.sources[].secret", "tasks spec.volumes[].configMap", "functions spec.runtimeSettings.envFrom[].secretRef"} {
		if !asked[k] {
			t.Errorf("%s never asked in the samples", k)
		}
	}
}

// jsonMap is the object as admission sees it: JSON, integers as int64.
func jsonMap(t *testing.T, o any) map[string]any {
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return ints(m).(map[string]any)
}

func ints(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = ints(e)
		}
	case []any:
		for i, e := range x {
			x[i] = ints(e)
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

// request.namespace is absent for cluster-scoped objects (Tasks,
// Functions): the policy's namespace variable must still evaluate.
func TestPolicyNamespaceVariable(t *testing.T) {
	p, _ := Policy()
	// Cluster-scoped Tasks and Functions come without request.namespace:
	// every variable that reads it guards the read, and the guard holds on
	// both kinds of request.
	guard := "has(request.namespace) && request.namespace != ''"
	for _, v := range p.Spec.Variables {
		if strings.Contains(v.Expression, "request.namespace") && !strings.Contains(v.Expression, guard) {
			t.Errorf("variable %s reads request.namespace without %s", v.Name, guard)
		}
	}
	env, err := cel.NewEnv(cel.Variable("request", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(guard + " ? request.namespace : '*'")
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, _ := env.Program(ast)
	for req, want := range map[*map[string]any]string{
		{"operation": "CREATE"}:                      "*",
		{"operation": "CREATE", "namespace": "team"}: "team",
	} {
		out, _, err := prg.Eval(map[string]any{"request": *req})
		if err != nil || out.Value() != want {
			t.Errorf("namespace of %v = %v (%v), want %q", *req, out, err, want)
		}
	}
}
