//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// The RestoreSessions of Stash's clone-pvc guide, changed only in apiVersion
// and the Repository's name: new PVCs from volumeClaimTemplates, each mounted
// at its volumeMount, the StatefulSet one with replicas and ${POD_ORDINAL}.
const (
	cloneDeploymentRestore = `
apiVersion: stow.dev/v1beta1
kind: RestoreSession
metadata:
  name: restore-deployment
spec:
  repository:
    name: repo
  rules:
  - paths:
    - /source/data
    - /source/config
  target:
    volumeMounts:
    - name:  restore-data
      mountPath:  /source/data
    - name:  restore-config
      mountPath:  /source/config
    volumeClaimTemplates:
    - metadata:
        name:  restore-data
      spec:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 2Gi
    - metadata:
        name:  restore-config
      spec:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 2Gi
`
	cloneStatefulSetRestore = `
apiVersion: stow.dev/v1beta1
kind: RestoreSession
metadata:
  name: restore-statefulset
spec:
  repository:
    name: repo
  rules:
  - paths:
    - /source/data
    - /source/config
  target:
    replicas: 3
    volumeMounts:
    - name:  restore-data-restore-demo
      mountPath:  /source/data
    - name:  restore-config-restore-demo
      mountPath:  /source/config
    volumeClaimTemplates:
    - metadata:
        name: restore-data-restore-demo-${POD_ORDINAL}
      spec:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 2Gi
    - metadata:
        name: restore-config-restore-demo-${POD_ORDINAL}
      spec:
        accessModes: [ "ReadWriteOnce" ]
        storageClassName: "standard"
        resources:
          requests:
            storage: 2Gi
`
)

// applyYAML creates an object from a manifest as kubectl would send it: no
// typed client in between, so the CRD schema decides what is kept.
func applyYAML(t *testing.T, ns, resource, manifest string) {
	t.Helper()
	body, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.stow.StowV1beta1().RESTClient().Post().Namespace(ns).Resource(resource).
		Body(body).SetHeader("Content-Type", "application/json").Do(context.Background()).Error(); err != nil {
		t.Fatalf("create %s: %v", resource, err)
	}
}

// TestCloneIntoNewPVCs: Stash's clone-pvc guide on two stand-alone PVCs
// backed up at /source/data and /source/config. Its RestoreSessions create
// new PVCs and restore each path into the PVC mounted there; a template that
// names an existing PVC is refused and that PVC is left as it was.
func TestCloneIntoNewPVCs(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	want := map[string]string{}
	for i, name := range []string{"source-data", "source-config"} {
		pvc(t, ns, name, corev1.ReadWriteOnce)
		runFixture(t, ns, name, "write", "/data", string(rune('1'+i)), "4")
		want[name] = runFixture(t, ns, name, "manifest", "/data")
	}
	if want["source-data"] == want["source-config"] {
		t.Fatal("both sources hold the same data: the test could not tell them apart")
	}
	createRepository(t, ns, "s3")
	for _, name := range []string{"source-data", "source-config"} {
		bc := backupConfig(ns, name, name, "0 0 1 1 *", 3)
		bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: name, MountPath: "/source/" + strings.TrimPrefix(name, "source-")}}
		createBC(t, bc)
		waitBCReady(t, ns, name)
		if s := triggerBackup(t, ns, name, 4*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("backup of %s ended %s: %s", name, s.Status.Phase, s.Status.Reason)
		}
	}

	applyYAML(t, ns, "restoresessions", cloneDeploymentRestore)
	if got := waitRestore(t, ns, "restore-deployment", 4*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore-deployment ended %s: %s %+v", got.Status.Phase, got.Status.Reason, got.Status.Stats)
	}
	for src, dst := range map[string]string{"source-data": "restore-data", "source-config": "restore-config"} {
		if got := runFixture(t, ns, dst, "manifest", "/data"); got != want[src] {
			t.Errorf("%s does not hold %s's data\nwant:\n%s\ngot:\n%s", dst, src, want[src], got)
		}
	}

	applyYAML(t, ns, "restoresessions", cloneStatefulSetRestore)
	if got := waitRestore(t, ns, "restore-statefulset", 6*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore-statefulset ended %s: %s %+v", got.Status.Phase, got.Status.Reason, got.Status.Stats)
	}
	for _, ord := range []string{"0", "2"} {
		if got := runFixture(t, ns, "restore-config-restore-demo-"+ord, "manifest", "/data"); got != want["source-config"] {
			t.Errorf("ordinal %s: restore-config-restore-demo-%s does not hold source-config's data:\n%s", ord, ord, got)
		}
	}

	// A template naming an existing PVC: Failed, nothing written into it.
	runFixture(t, ns, "source-data", "mutate", "/data")
	mutated := runFixture(t, ns, "source-data", "manifest", "/data")
	taken := strings.NewReplacer("restore-deployment", "taken", "name:  restore-data", "name:  source-data").Replace(cloneDeploymentRestore)
	applyYAML(t, ns, "restoresessions", taken)
	got := waitRestore(t, ns, "taken", 4*time.Minute)
	if got.Status.Phase != v1beta1.RestoreFailed || !strings.Contains(got.Status.Reason, "PVC source-data already exists and was not created by this RestoreSession") {
		t.Errorf("template naming an existing PVC: %s %q", got.Status.Phase, got.Status.Reason)
	}
	if now := runFixture(t, ns, "source-data", "manifest", "/data"); now != mutated {
		t.Errorf("the existing PVC was written into:\nbefore:\n%s\nafter:\n%s", mutated, now)
	}
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, "restore-data", metav1.GetOptions{}); err != nil {
		t.Errorf("restore-data: %v", err)
	}
}
