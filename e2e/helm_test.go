//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/internal/testenv"
)

// TestHelmChartOnTheCluster checks both ways of installing Stow on this
// cluster. hack/e2e.sh installs the operator the other tests use one way
// (STOW_E2E_INSTALL: helm by default, or kustomize); this test asserts that
// install and has the API server accept every object of the other in a
// server-side dry run (a second real install would replace the operator under
// the other tests). The rendered chart's equality with deploy/ is asserted by
// hack/gen-helm's tests.
func TestHelmChartOnTheCluster(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	helm, err := testenv.FindTool("helm", "STOW_HELM")
	if err != nil {
		t.Fatalf("%v (hack/tools.sh helm builds it)", err)
	}
	if os.Getenv("STOW_E2E_INSTALL") == "helm" {
		assertHelmRelease(t, helm)
		dryRun(t, "kustomize bundle deploy/", nil, "-k", "../deploy")
		return
	}
	sv, err := e.kube.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	var rendered, errb bytes.Buffer
	cmd := exec.Command(helm, "template", "stow", "../deploy/helm/stow", "--namespace", e.operatorNS,
		"--include-crds", "--kube-version", sv.GitVersion)
	cmd.Stdout, cmd.Stderr = &rendered, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, errb.String())
	}
	dryRun(t, "Helm chart", &rendered, "-f", "-")
}

// assertHelmRelease asserts that the operator the suite runs is the Helm
// release "stow": deployed, and owning the operator's Deployment.
func assertHelmRelease(t *testing.T, helm string) {
	t.Helper()
	out, err := exec.Command(helm, "status", "stow", "--namespace", e.operatorNS, "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("helm status stow: %v\n%s", err, out)
	}
	var st struct {
		Info struct {
			Status string `json:"status"`
		} `json:"info"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("helm status output: %v\n%s", err, out)
	}
	if st.Info.Status != "deployed" {
		t.Errorf("Helm release stow is %q, want deployed", st.Info.Status)
	}
	d, err := e.kube.AppsV1().Deployments(e.operatorNS).Get(context.Background(), "stow-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Annotations["meta.helm.sh/release-name"]; got != "stow" {
		t.Errorf("operator Deployment's meta.helm.sh/release-name = %q, want stow (not installed by Helm?)", got)
	}
	if d.Status.ReadyReplicas < 1 {
		t.Errorf("operator Deployment has %d ready replicas", d.Status.ReadyReplicas)
	}
}

// dryRun has the API server accept the objects of one install (kubectl
// apply ARGS, server side, dry run) and checks that the main ones are there.
func dryRun(t *testing.T, what string, stdin *bytes.Buffer, args ...string) {
	t.Helper()
	apply := exec.Command("kubectl", append([]string{"apply", "--server-side", "--force-conflicts",
		"--field-manager=stow-e2e-install", "--dry-run=server"}, args...)...)
	if stdin != nil {
		apply.Stdin = stdin
	}
	out, err := apply.CombinedOutput()
	if err != nil {
		t.Fatalf("the API server refuses the %s's objects: %v\n%s", what, err, out)
	}
	for _, want := range []string{
		"deployment.apps/stow-operator", "clusterrole.rbac.authorization.k8s.io/stow-operator",
		"validatingadmissionpolicy.admissionregistration.k8s.io/stow.dev-pod-settings",
		"customresourcedefinition.apiextensions.k8s.io/snapshots.stow.dev",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry run of the %s did not apply %s:\n%s", what, want, out)
		}
	}
}
