package main

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// Clutter: objects Stow neither owns nor references, as a cluster with
// thousands of Helm releases has them.
const (
	clutterNamespaces  = 10
	clutterSecretBytes = 100 << 10 // a Helm release record
	clutterClass       = "stow-bench-unprovisioned"
	settleSample       = 10 * time.Second
)

func clutterNamespace(i int) string { return fmt.Sprintf("stow-bench-clutter-%d", i) }

// clutter measures the operator's memory against the rest of the cluster:
// its RSS settled after a restart in the cluster as it is, the peak while
// BENCH_CP_CLUTTER Secrets of 100 KiB, as many PVCs (of a StorageClass no
// one provisions, so they stay Pending) and as many suspended CronJobs are
// created in namespaces stow-bench-clutter-*, and its RSS settled after a
// restart with all of them there.
func (h *harness) clutter(ctx context.Context) error {
	n := h.cfg.clutter
	logf("clutter: restarting the operator in the cluster as it is")
	pid, _, err := h.restartOperator(ctx, 0)
	if err != nil {
		return err
	}
	base, err := settledRSS(pid, settleSample)
	if err != nil {
		return err
	}
	logf("clutter: settled RSS %.1f MiB", base)

	for i := range clutterNamespaces {
		_, err := h.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clutterNamespace(i)}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	defer h.deleteClutter()
	stopPeak := peakRSS(pid)
	payload := []byte(rand.String(clutterSecretBytes))
	start := time.Now()
	create := func(what string, f func(ns, name string) error) error {
		logf("clutter: %d %s", n, what)
		return parallel(n, 32, func(i int) error {
			err := f(clutterNamespace(i%clutterNamespaces), fmt.Sprintf("%s-%05d", what, i))
			if apierrors.IsAlreadyExists(err) {
				return nil // kept from an earlier run (BENCH_CP_KEEP_CLUTTER=1)
			}
			return err
		})
	}
	err = create("secret", func(ns, name string) error {
		_, err := h.kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"owner": "helm"}},
			Type: "helm.sh/release.v1", Data: map[string][]byte{"release": payload}}, metav1.CreateOptions{})
		return err
	})
	if err == nil {
		err = create("pvc", func(ns, name string) error {
			_, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: ptr.To(clutterClass),
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				}}, metav1.CreateOptions{})
			return err
		})
	}
	if err == nil {
		err = create("cronjob", func(ns, name string) error {
			_, err := h.kube.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: batchv1.CronJobSpec{Schedule: neverSoonCron, Suspend: ptr.To(true), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{Name: "c", Image: "docker.io/library/busybox:1"}}}}}}}}, metav1.CreateOptions{})
			return err
		})
	}
	peak := stopPeak()
	if err != nil {
		return err
	}
	logf("clutter: created in %.0f s; operator RSS peak %.1f MiB meanwhile", time.Since(start).Seconds(), peak)

	logf("clutter: restarting the operator with the clutter in place")
	pid, _, err = h.restartOperator(ctx, 0)
	if err != nil {
		return err
	}
	with, err := settledRSS(pid, settleSample)
	if err != nil {
		return err
	}
	h.cp.ClutterObjects, h.cp.ClutterBaseMiB, h.cp.ClutterMiB, h.cp.ClutterPeakMiB = n, base, with, peak
	logf("clutter: settled RSS %.1f MiB with %d Secrets, PVCs and CronJobs (%.1f MiB without)", with, n, base)
	return nil
}

// peakRSS samples pid's RSS until the returned function is called, which
// returns the largest sample.
func peakRSS(pid int) func() float64 {
	done, result := make(chan struct{}), make(chan float64)
	go func() {
		var peak float64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
				if rss, _, err := rssMiB("/proc", pid); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	}()
	return func() float64 { close(done); return <-result }
}

// deleteClutter deletes the clutter namespaces and waits until they are
// gone, unless BENCH_CP_KEEP_CLUTTER=1 keeps them for the next run.
func (h *harness) deleteClutter() {
	if h.cfg.keepClutter {
		logf("keeping namespaces stow-bench-clutter-* (BENCH_CP_KEEP_CLUTTER=1)")
		return
	}
	bg := context.Background()
	// The pvc-protection controller would take the claims' finalizers off
	// one by one at the controller manager's client rate (20/s: minutes for
	// 10,000), holding up every other PVC deletion of the shared cluster
	// meanwhile. Nothing uses these claims: the harness takes them off.
	fin := []byte(`{"metadata":{"finalizers":null}}`)
	for i := range clutterNamespaces {
		ns := clutterNamespace(i)
		if err := h.kube.CoreV1().PersistentVolumeClaims(ns).DeleteCollection(bg, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logf("deleting the PVCs of %s: %v", ns, err)
		}
		claims, err := h.kube.CoreV1().PersistentVolumeClaims(ns).List(bg, metav1.ListOptions{})
		if err != nil {
			continue
		}
		_ = parallel(len(claims.Items), 32, func(j int) error {
			_, err := h.kube.CoreV1().PersistentVolumeClaims(ns).Patch(bg, claims.Items[j].Name, types.MergePatchType, fin, metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				logf("finalizers of PVC %s/%s: %v", ns, claims.Items[j].Name, err)
			}
			return nil
		})
		if err := h.kube.CoreV1().Namespaces().Delete(bg, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logf("deleting namespace %s: %v", ns, err)
		}
	}
	for i := range clutterNamespaces {
		err := wait.PollUntilContextTimeout(bg, time.Second, 15*time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := h.kube.CoreV1().Namespaces().Get(ctx, clutterNamespace(i), metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			logf("namespace %s not deleted: %v", clutterNamespace(i), err)
		}
	}
}
