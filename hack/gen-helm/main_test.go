package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/stowhq/stow/internal/testenv"
)

const chartDir = "../../deploy/helm/stow"

// TestChartIsGenerated: the chart in the tree is what deploy/ generates
// (make generate), so installing with Helm installs what deploy/ does.
func TestChartIsGenerated(t *testing.T) {
	want, err := generate("../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	err = filepath.WalkDir(chartDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		have = append(have, rel)
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if w, ok := want[rel]; !ok {
			t.Errorf("%s is not generated from deploy/ (make generate removes it)", rel)
		} else if !bytes.Equal(got, w) {
			t.Errorf("%s differs from what deploy/ generates: run make generate", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if !slices.Contains(have, name) {
			t.Errorf("%s is missing: run make generate", name)
		}
	}
}

func TestGenerationFailsWhenDeployChangesUnderIt(t *testing.T) {
	_, err := deploymentTemplate("apiVersion: apps/v1\nkind: Deployment\n")
	if err == nil || !strings.Contains(err.Error(), "resources") {
		t.Errorf("err = %v", err)
	}
	if _, err := substitute("a\na\n", "x.yaml", []sub{{"a\n", "b\n"}}); err == nil || !strings.Contains(err.Error(), "update hack/gen-helm") {
		t.Errorf("err = %v", err)
	}
}

func TestChartVersion(t *testing.T) {
	for tag, want := range map[string]string{"dev": "0.0.0-dev", "v0.3.0": "0.3.0", "v1.2.3-rc.1": "1.2.3-rc.1", "main_2": "0.0.0-main-2"} {
		if got := chartVersion(tag); got != want {
			t.Errorf("chartVersion(%q) = %q, want %q", tag, got, want)
		}
	}
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	testenv.SkipIfShort(t)
	bin, err := testenv.FindTool("helm", "STOW_HELM")
	if err != nil {
		t.Fatalf("%v (hack/tools.sh helm builds it)", err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func TestHelmLint(t *testing.T) {
	out := helm(t, "lint", "--strict", chartDir)
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("helm lint:\n%s", out)
	}
}

// kubeVersion is the cluster version templates render for (a helm built
// with go install assumes 1.20, below the chart's kubeVersion).
const kubeVersion = "1.34.0"

type object = map[string]any

func objects(t *testing.T, docs string) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, d := range strings.Split(docs, "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatalf("%v in\n%s", err, d)
		}
		if o == nil {
			continue
		}
		meta, _ := o["metadata"].(object)
		m[o["kind"].(string)+"/"+meta["name"].(string)] = o
	}
	return m
}

// deployObjects are the objects of deploy/'s manifests (and monitoring).
func deployObjects(t *testing.T, files ...string) map[string]object {
	t.Helper()
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("../../deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, string(b))
	}
	return objects(t, strings.Join(all, "\n---\n"))
}

func del(o object, path ...string) {
	for _, p := range path[:len(path)-1] {
		next, ok := o[p].(object)
		if !ok {
			return
		}
		o = next
	}
	delete(o, path[len(path)-1])
}

// TestChartRendersTheDeployBundle: with its default values, the chart
// renders deploy/'s objects, in the release namespace, and the CRDs as they
// are; the monitoring toggles render deploy/monitoring's.
func TestChartRendersTheDeployBundle(t *testing.T) {
	rendered := objects(t, helm(t, "template", "stow", chartDir, "--kube-version", kubeVersion, "--namespace", "stow-system", "--include-crds",
		"--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true"))
	want := deployObjects(t, "rbac.yaml", "admission-policy.yaml", "deployment.yaml", "service.yaml",
		"monitoring/servicemonitor.yaml", "monitoring/prometheusrule.yaml")
	crds, _ := filepath.Glob("../../deploy/crds/*.yaml")
	for k, v := range deployObjects(t, func() (r []string) {
		for _, c := range crds {
			r = append(r, "crds/"+filepath.Base(c))
		}
		return r
	}()...) {
		want[k] = v
	}
	// The chart adds the version label to the operator's pod, as
	// deploy/kustomization.yaml's labels: does.
	dep := rendered["Deployment/stow-operator"]
	if dep == nil {
		t.Fatal("no Deployment rendered")
	}
	tmplLabels := dep["spec"].(object)["template"].(object)["metadata"].(object)["labels"].(object)
	if tmplLabels["app.kubernetes.io/version"] != "dev" {
		t.Errorf("pod template labels %v lack app.kubernetes.io/version=dev", tmplLabels)
	}
	delete(tmplLabels, "app.kubernetes.io/version")
	for k, w := range want {
		got, ok := rendered[k]
		if !ok {
			t.Errorf("%s of deploy/ is not rendered", k)
			continue
		}
		if !reflect.DeepEqual(got, w) {
			gy, _ := yaml.Marshal(got)
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s renders differently from deploy/:\n--- chart\n%s\n--- deploy\n%s", k, gy, wy)
		}
	}
	for k := range rendered {
		if _, ok := want[k]; !ok {
			t.Errorf("chart renders %s, which deploy/ does not have", k)
		}
	}
}

func TestChartValues(t *testing.T) {
	r := objects(t, helm(t, "template", "stow", chartDir, "--kube-version", kubeVersion, "--namespace", "backup",
		"--set", "image.repository=registry.example/stow,image.tag=v9.9.9,leaderElection.enabled=false,replicas=1,admissionPolicy.enabled=false",
		"--set", "extraArgs={--max-concurrent-jobs=3,-v=2}",
		"--set", "resources.limits.memory=1Gi"))
	if _, ok := r["ValidatingAdmissionPolicy/stow.dev-pod-settings"]; ok {
		t.Error("admissionPolicy.enabled=false still renders the policy")
	}
	if _, ok := r["ServiceMonitor/stow-operator"]; ok {
		t.Error("the ServiceMonitor is rendered by default")
	}
	dep := r["Deployment/stow-operator"]
	if ns := dep["metadata"].(object)["namespace"]; ns != "backup" {
		t.Errorf("namespace %v, want the release's", ns)
	}
	spec := dep["spec"].(object)["template"].(object)["spec"].(object)
	c := spec["containers"].([]any)[0].(object)
	if c["image"] != "registry.example/stow:v9.9.9" {
		t.Errorf("image %v", c["image"])
	}
	args := c["args"].([]any)
	if slices.Contains(args, any("--leader-elect")) || !slices.Contains(args, any("--max-concurrent-jobs=3")) || !slices.Contains(args, any("-v=2")) {
		t.Errorf("args %v", args)
	}
	if m := c["resources"].(object)["limits"].(object)["memory"]; m != "1Gi" {
		t.Errorf("memory limit %v", m)
	}
	sa := r["ClusterRoleBinding/stow-operator"]["subjects"].([]any)[0].(object)
	if sa["namespace"] != "backup" {
		t.Errorf("ClusterRoleBinding subject %v not in the release namespace", sa)
	}
}
