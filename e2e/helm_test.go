//go:build e2e

package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stowhq/stow/internal/testenv"
)

// TestHelmChartOnTheCluster renders the Helm chart (deploy/helm/stow, the
// same objects as deploy/) for this cluster's operator namespace and has the
// API server accept every object in a server-side dry run: CRDs, RBAC, the
// admission policy, the Deployment and, switched on, the monitoring objects
// when their CRDs exist. A real install would replace the operator the other
// tests use; the rendered objects' equality with deploy/, which this suite
// installs, is asserted by hack/gen-helm's tests.
func TestHelmChartOnTheCluster(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	helm, err := testenv.FindTool("helm", "STOW_HELM")
	if err != nil {
		t.Fatalf("%v (hack/tools.sh helm builds it)", err)
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
	apply := exec.Command("kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager=stow-e2e-helm",
		"--dry-run=server", "-f", "-")
	apply.Stdin = &rendered
	out, err := apply.CombinedOutput()
	if err != nil {
		t.Fatalf("the API server refuses the chart's objects: %v\n%s", err, out)
	}
	for _, want := range []string{
		"deployment.apps/stow-operator", "clusterrole.rbac.authorization.k8s.io/stow-operator",
		"validatingadmissionpolicy.admissionregistration.k8s.io/stow.dev-pod-settings",
		"customresourcedefinition.apiextensions.k8s.io/snapshots.stow.dev",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dry run did not apply %s:\n%s", want, out)
		}
	}
}
