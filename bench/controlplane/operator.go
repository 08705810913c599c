package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The operator as deploy/ installs it.
const (
	operatorNamespace = "stow-system"
	operatorSelector  = "app.kubernetes.io/name=stow,app.kubernetes.io/component=operator"
	operatorLease     = "stow-operator"
	operatorMetrics   = "56789" // the embedded Pushgateway's port serves the operator's metrics too
	bcQueue           = "backupconfiguration"
)

// operatorPod returns the one running operator pod.
func (h *harness) operatorPods(ctx context.Context) ([]corev1.Pod, error) {
	l, err := h.kube.CoreV1().Pods(operatorNamespace).List(ctx, metav1.ListOptions{LabelSelector: operatorSelector})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// queueState is what the operator's /metrics say about the BackupConfiguration
// controller: reconciles done since the process started, and the queue depth.
type queueState struct {
	reconciles float64
	depth      float64
}

func parseQueueState(b []byte) (queueState, error) {
	var st queueState
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, `stow_reconcile_duration_seconds_count{controller="`+bcQueue+`"}`):
			dst = &st.reconciles
		case strings.HasPrefix(line, `workqueue_depth{name="`+bcQueue+`"}`):
			dst = &st.depth
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return st, fmt.Errorf("metric line %q: %v", line, err)
		}
		*dst = v
		seen++
	}
	if seen == 0 {
		return st, fmt.Errorf("no %s workqueue metrics", bcQueue)
	}
	return st, sc.Err()
}

func (h *harness) queueState(ctx context.Context, pod string) (queueState, error) {
	b, err := h.kube.CoreV1().Pods(operatorNamespace).ProxyGet("http", pod, operatorMetrics, "/metrics", nil).DoRaw(ctx)
	if err != nil {
		return queueState{}, err
	}
	return parseQueueState(b)
}

// restartOperator deletes the operator's pod and waits until the new one
// leads, runs on this host, has reconciled at least minReconciles
// configurations and has an empty BackupConfiguration queue three polls in a
// row. It returns the new process's PID and the time from the delete.
func (h *harness) restartOperator(ctx context.Context, minReconciles int) (pid int, elapsed time.Duration, err error) {
	old, err := h.operatorPods(ctx)
	if err != nil {
		return 0, 0, err
	}
	oldPID, _ := findOperator("/proc")
	var oldNames []string
	start := time.Now()
	for _, p := range old {
		oldNames = append(oldNames, p.Name)
		if err := h.kube.CoreV1().Pods(operatorNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, 0, err
		}
	}
	var pod string
	err = waitUntil(ctx, 5*time.Minute, "a new operator pod, ready, the old one gone", func() bool {
		pods, err := h.operatorPods(ctx)
		if err != nil {
			return false
		}
		pod = ""
		for _, p := range pods {
			if slices.Contains(oldNames, p.Name) {
				return false
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					pod = p.Name
				}
			}
		}
		return pod != ""
	})
	if err != nil {
		return 0, 0, err
	}
	err = waitUntil(ctx, time.Minute, "the new operator process on this host", func() bool {
		pid, err = findOperator("/proc")
		return err == nil && pid != oldPID
	})
	if err != nil {
		return 0, 0, err
	}
	err = waitUntil(ctx, 2*time.Minute, "the new operator to hold the Lease", func() bool {
		l, err := h.kube.CoordinationV1().Leases(operatorNamespace).Get(ctx, operatorLease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true // not leader-elected: it runs at once
		}
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == pod
	})
	if err != nil {
		return 0, 0, err
	}
	quiet := 0
	err = waitUntil(ctx, 10*time.Minute, fmt.Sprintf("the new operator to reconcile %d configurations and drain its queue", minReconciles), func() bool {
		st, err := h.queueState(ctx, pod)
		if err == nil && st.reconciles >= float64(minReconciles) && st.depth == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if quiet < 3 {
			time.Sleep(200 * time.Millisecond) // polling pace of the scrape, not a synchronization
		}
		return quiet >= 3
	})
	return pid, time.Since(start), err
}

// settledRSS samples the RSS of pid for d and returns the largest sample.
func settledRSS(pid int, d time.Duration) (float64, error) {
	var peak float64
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		rss, _, err := rssMiB("/proc", pid)
		if err != nil {
			return 0, err
		}
		peak = max(peak, rss)
		time.Sleep(100 * time.Millisecond)
	}
	return peak, nil
}
