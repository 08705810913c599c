//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// twoNodesHint says how to get a second node; tests that need one skip with it.
const twoNodesHint = "needs two schedulable, Ready nodes: on the local cluster run " +
	"`STOW_CLUSTER_NODES=2 hack/e2e.sh` (or `hack/local-cluster.sh node2-up`); with kind, `KIND_NODES=2 hack/kind.sh`"

// otherNode returns a Ready, schedulable node that does not run the
// operator (so a Job pod that lands there followed its volume, not the
// operator), and the StorageClass that puts a volume on the node of its
// first pod (STOW_E2E_NODE_LOCAL_CLASS, default local-wffc: the local
// cluster's; kind's default `standard` is one too). It skips the test when
// the cluster has one node or no such class.
func otherNode(t *testing.T) (node, class string) {
	t.Helper()
	c := context.Background()
	nodes, err := e.kube.CoreV1().Nodes().List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	operatorNodes := map[string]bool{}
	if pods, err := e.kube.CoreV1().Pods(e.operatorNS).List(c, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			if strings.HasPrefix(p.Name, "stow-operator-") {
				operatorNodes[p.Spec.NodeName] = true
			}
		}
	}
	var usable, candidates []string
	for _, n := range nodes.Items {
		ready := false
		for _, cd := range n.Status.Conditions {
			ready = ready || (cd.Type == corev1.NodeReady && cd.Status == corev1.ConditionTrue)
		}
		tainted := false
		for _, tn := range n.Spec.Taints {
			tainted = tainted || tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute
		}
		if !ready || n.Spec.Unschedulable || tainted { // e.g. kind's control-plane node
			continue
		}
		usable = append(usable, n.Name)
		if !operatorNodes[n.Name] {
			candidates = append(candidates, n.Name)
		}
	}
	if len(usable) < 2 || len(candidates) == 0 {
		t.Skipf("%d usable node(s) %v: %s", len(usable), usable, twoNodesHint)
	}
	sort.Strings(candidates)
	class = getenv("STOW_E2E_NODE_LOCAL_CLASS", "local-wffc")
	sc, err := e.kube.StorageV1().StorageClasses().Get(c, class, metav1.GetOptions{})
	if err != nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Skipf("StorageClass %s with volumeBindingMode WaitForFirstConsumer not found (%v): set STOW_E2E_NODE_LOCAL_CLASS", class, err)
	}
	return candidates[0], class
}

// onNode pins pod to node by name (as the operator pins Job pods).
func onNode(pod *corev1.Pod, node string) *corev1.Pod {
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}}}}
	return pod
}

// localVolumeOn creates an RWO PVC of class that lives on node: its first
// consumer, an app pod pinned there that keeps it mounted. It returns the
// app pod's name.
func localVolumeOn(t *testing.T, ns, claim, class, node string) string {
	t.Helper()
	c := context.Background()
	if _, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Create(c, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := onNode(fixturePod(ns, "app", claim, "hold", "/data", "1800"), node)
	if _, err := e.kube.CoreV1().Pods(ns).Create(c, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "app pod running on "+node, 3*time.Minute, func(c context.Context) (bool, error) {
		p, err := e.kube.CoreV1().Pods(ns).Get(c, app.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == node, nil
	})
	return app.Name
}

// An RWO volume in use by an app pod on another node than the operator's:
// the backup pod runs on the app's node, the backup succeeds and restores.
func TestMultiNodeRWOBackupRunsOnTheAppNode(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	node, class := otherNode(t)
	ns := namespace(t)
	createRepository(t, ns, "s3")
	app := localVolumeOn(t, ns, "data", class, node)
	// Data written next to the app (the volume's node affinity puts the
	// writer on the same node).
	runFixture(t, ns, "data", "write", "/data", "19", "20")
	want := runFixture(t, ns, "data", "manifest", "/data")
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 3))
	waitBCReady(t, ns, "bc")

	s := triggerBackup(t, ns, "bc", 5*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("session %s: phase %s, reason %q", s.Name, s.Status.Phase, s.Status.Reason)
	}
	msg := v1beta1.GetCondition(s.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured).Message
	if !strings.Contains(msg, "on node "+node) || !strings.Contains(msg, "in use by pod "+app) {
		t.Fatalf("BackupExecutorEnsured message %q does not say the Job was placed on %s for pod %s", msg, node, app)
	}
	pods, err := e.kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: v1beta1.LabelBackupSession + "=" + s.Name})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("backup pod of %s not found: %v", s.Name, err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != node {
			t.Fatalf("backup pod %s ran on %s, want %s (the app's node)", p.Name, p.Spec.NodeName, node)
		}
	}
	if n := s.Status.Targets[0].Stats; len(n) == 0 || len(n[0].Snapshots) == 0 {
		t.Fatalf("no snapshot recorded: %+v", s.Status.Targets[0])
	}
	if got := runFixture(t, ns, "data", "manifest", "/data"); got != want {
		t.Fatalf("the backup changed the data on %s", node)
	}
}

// localClusterNode2 returns the local cluster's script and second node, or
// skips: losing a node on purpose needs the local cluster.
func localClusterNode2(t *testing.T, node string) string {
	t.Helper()
	script, err := filepath.Abs("../hack/local-cluster.sh")
	if err != nil || os.Getenv("STOW_E2E_EXTERNAL") == "1" || node != getenv("NODE2_NAME", "stow-node-b") {
		t.Skipf("losing a node needs the local cluster's second node (hack/local-cluster.sh node2-stop); got node %s", node)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("no %s: %v", script, err)
	}
	return script
}

func localCluster(t *testing.T, script string, args ...string) {
	t.Helper()
	out, err := exec.Command("bash", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	t.Logf("local-cluster.sh %v:\n%s", args, out)
}

// A node lost in the middle of a backup (its kubelet, runtime and pod
// processes killed, as in a crash): the session fails within a bounded time
// with a reason that names the node, and after the node returns the next
// backup succeeds (the dead pod's restic lock is removed as stale once the
// pod is gone) and restic check passes.
func TestMultiNodeLostNodeFailsSessionAndRecovers(t *testing.T) {
	node, class := otherNode(t)
	script := localClusterNode2(t, node)
	t.Parallel()
	e2eExclusive(t) // pods of other tests may run on the node
	ns := namespace(t)
	createRepository(t, ns, "s3")
	b, secret := backend(t, ns, "s3")
	localVolumeOn(t, ns, "data", class, node)
	runFixture(t, ns, "data", "big", "/data", "300")
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 10))
	waitBCReady(t, ns, "bc")
	t.Cleanup(func() {
		// Whatever happened, leave the node running for the next test.
		_ = exec.Command("bash", script, "node2-up").Run()
	})

	name := startSession(t, ns, "bc")
	pod := waitStepRunning(t, ns, name, "pvc-backup-0")
	if pod.Spec.NodeName != node {
		t.Fatalf("backup pod on %s, want %s", pod.Spec.NodeName, node)
	}
	waitFor(t, "the backup's restic lock", 2*time.Minute, func(context.Context) (bool, error) {
		out, err := hostRestic(t, b, secret, "list", "locks", "--no-lock").Output()
		return err == nil && len(strings.TrimSpace(string(out))) > 0, nil
	})
	lost := time.Now()
	localCluster(t, script, "node2-stop")

	// Bound: the node controller's grace period (50 s) + Stow's (60 s) + a resync.
	s := waitSessionFinal(t, ns, name, 5*time.Minute)
	took := time.Since(lost)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("session on the lost node ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	c := v1beta1.GetCondition(s.Status.Targets[0].Conditions, v1beta1.BackupDisrupted)
	if c == nil || c.Reason != "NodeLost" || !strings.Contains(c.Message, "node "+node) {
		t.Fatalf("BackupDisrupted = %+v, want reason NodeLost naming node %s", c, node)
	}
	if took > 3*time.Minute {
		t.Errorf("the session failed %s after the node was lost; want <= 3m", took.Round(time.Second))
	}
	t.Logf("lost node: session %s after %s: %s", s.Status.Phase, took.Round(time.Second), s.Status.Reason)

	localCluster(t, script, "node2-up")
	// The dead pod goes once its node confirms it; until then its lock is
	// not provably stale.
	waitFor(t, "the lost backup pod gone", 3*time.Minute, func(c context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Pods(ns).Get(c, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	next := triggerBackup(t, ns, "bc", 5*time.Minute)
	if next.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("the backup after the node returned ended %s: %s", next.Status.Phase, next.Status.Reason)
	}
	repo := requestMaintenance(t, ns, v1beta1.MaintenanceCheck)
	if r := runOf(repo, v1beta1.MaintenanceCheck); r == nil || r.Succeeded == nil || !*r.Succeeded || repo.Status.Integrity == nil || !*repo.Status.Integrity {
		t.Fatalf("restic check after the recovery: %+v, integrity %v", r, repo.Status.Integrity)
	}
}
