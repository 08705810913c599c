package podguard

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/podpolicy"
)

var installed = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func hostPathRepo(written time.Time) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "node", Namespace: "team", CreationTimestamp: metav1.NewTime(installed.Add(-time.Hour)),
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kubectl", Time: ptr.To(metav1.NewTime(written))},
				// The operator's status writes do not count.
				{Manager: "stow-operator", Subresource: "status", Time: ptr.To(metav1.NewTime(installed.Add(time.Hour)))},
			}},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "s", Local: &v1beta1.LocalSpec{MountPath: "/repo",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/backups"}}}}},
	}
}

func withPolicy() *fake.Clientset {
	p, b := podpolicy.Policy()
	p.CreationTimestamp, b.CreationTimestamp = metav1.NewTime(installed), metav1.NewTime(installed)
	return fake.NewClientset(p, b)
}

func TestGuard(t *testing.T) {
	ctx := context.Background()
	plain := &v1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bc", Namespace: "team"}}
	after, before := hostPathRepo(installed.Add(time.Minute)), hostPathRepo(installed.Add(-time.Minute))

	none := New(Admission, fake.NewClientset())
	if why := none.Check(ctx, Object{podpolicy.BackupConfigurations, plain}); why != "" {
		t.Errorf("a plain object needs no policy: %s", why)
	}
	why := none.Check(ctx, Object{podpolicy.Repositories, after})
	if !strings.Contains(why, "spec.backend.local.hostPath asks for a directory of the node (host-volume) of Repository team/node") ||
		!strings.Contains(why, "is not installed") {
		t.Errorf("without the policy: %q", why)
	}

	g := New(Admission, withPolicy())
	if why := g.Check(ctx, Object{podpolicy.BackupConfigurations, plain}, Object{podpolicy.Repositories, after}); why != "" {
		t.Errorf("written after the policy: %s", why)
	}
	if why := g.Check(ctx, Object{podpolicy.Repositories, before}); !strings.Contains(why, "before the admission policy") {
		t.Errorf("written before the policy: %q", why)
	}

	changed := withPolicy()
	p, _ := changed.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, podpolicy.PolicyName, metav1.GetOptions{})
	p.Spec.Validations = p.Spec.Validations[1:]
	if _, err := changed.AdmissionregistrationV1().ValidatingAdmissionPolicies().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if why := New(Admission, changed).Check(ctx, Object{podpolicy.Repositories, after}); !strings.Contains(why, "is not this operator's") {
		t.Errorf("edited policy: %q", why)
	}

	if why := New(Trust, nil).Check(ctx, Object{podpolicy.Repositories, before}); why != "" {
		t.Errorf("trust: %q", why)
	}
	if why := New(Refuse, withPolicy()).Check(ctx, Object{podpolicy.Repositories, after}); !strings.Contains(why, "--pod-settings=refuse") {
		t.Errorf("refuse: %q", why)
	}
	var nilGuard *Guard
	if why := nilGuard.Check(ctx, Object{podpolicy.Repositories, before}); why != "" {
		t.Errorf("nil guard: %q", why)
	}
}

// A configuration whose Job would read a Secret is checked like every ask:
// the operator runs it only once the admission policy checked that its
// writer may get that Secret, and says which Secret otherwise.
func TestGuardSecretReference(t *testing.T) {
	ctx := context.Background()
	bc := &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "bc", Namespace: "team", CreationTimestamp: metav1.NewTime(installed.Add(time.Minute))},
		Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{Container: &v1beta1.ContainerRuntimeSettings{
			Env: []corev1.EnvVar{{Name: "REST_SERVER_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db-admin"}, Key: "password"}}}}}}},
	}
	why := New(Admission, fake.NewClientset()).Check(ctx, Object{podpolicy.BackupConfigurations, bc})
	if !strings.Contains(why, "spec.runtimeSettings.container.env[*].valueFrom.secretKeyRef asks for a Secret's value in an environment variable (Secret db-admin) (secrets) of BackupConfiguration team/bc") ||
		!strings.Contains(why, "is not installed") {
		t.Errorf("without the policy: %q", why)
	}
	if why := New(Admission, withPolicy()).Check(ctx, Object{podpolicy.BackupConfigurations, bc}); why != "" {
		t.Errorf("written after the policy: %q", why)
	}
	if why := New(Refuse, withPolicy()).Check(ctx, Object{podpolicy.BackupConfigurations, bc}); !strings.Contains(why, "Secret db-admin") {
		t.Errorf("refuse: %q", why)
	}
}

// Every Repository names its storage Secret, which the admission policy
// checks against the writer (podpolicy's AdmissionOnly rule). The operator
// does not check it again: it would refuse every Repository written before
// the policy, and all of them without the policy or with refuse.
func TestGuardLeavesTheStorageSecretToAdmission(t *testing.T) {
	ctx := context.Background()
	repo := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "team", CreationTimestamp: metav1.NewTime(installed.Add(-time.Hour))},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "creds", Rest: &v1beta1.RestServerSpec{URL: "http://rest:8000/r"}}}}
	asks, err := podpolicy.Asks(podpolicy.Repositories, repo)
	if err != nil || len(asks) != 1 || !asks[0].AdmissionOnly {
		t.Fatalf("asks %v (%v): want the storage Secret, checked at admission only", asks, err)
	}
	for name, g := range map[string]*Guard{"no policy": New(Admission, fake.NewClientset()), "written before the policy": New(Admission, withPolicy()),
		"refuse": New(Refuse, withPolicy())} {
		if why := g.Check(ctx, Object{podpolicy.Repositories, repo}); why != "" {
			t.Errorf("%s: %q", name, why)
		}
	}
}
