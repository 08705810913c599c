package hookrun

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// execRun is an exec hook under way. The operator runs it in the
// background (a sync must not wait for a command), and the session is
// queued again when it ends. An operator restart forgets it: the next sync
// runs the hook again.
type execRun struct {
	cancel context.CancelFunc
	done   bool
	result Result
}

func execKey(session metav1.Object, hookType string) string {
	return string(session.GetUID()) + "/" + hookType
}

// target is one container an exec hook runs in.
type target struct{ pod, container string }

// runExec starts an exec hook in the pods that use the claim, or reports
// the outcome of the one started before.
func (r *Runner) runExec(h Hook, rendered v1beta1.Handler, bound time.Duration) (Result, error) {
	key := execKey(h.Session, h.Type)
	r.mu.Lock()
	if e := r.execs[key]; e != nil {
		defer r.mu.Unlock()
		if !e.done {
			return Result{State: Running, Requeue: bound}, nil
		}
		delete(r.execs, key)
		return e.result, nil
	}
	r.mu.Unlock()
	if r.cfg.Exec == nil {
		return Result{State: Failed, Message: "this operator runs no exec hooks"}, nil
	}
	if len(rendered.Exec.Command) == 0 {
		return Result{State: Failed, Message: "exec has no command"}, nil
	}
	ns := h.Session.GetNamespace()
	// Application pods are not Stow's: they are not in the informers' cache
	// (label-filtered), so they are listed when a hook runs.
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	list, err := r.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return Result{}, fmt.Errorf("list pods of %s for the %s hook: %w", ns, h.Type, err)
	}
	targets, why := Targets(list.Items, h.Claim, h.Invoker, rendered.ContainerName)
	if why != "" {
		cancel()
		return Result{State: Failed, Message: why}, nil
	}
	e := &execRun{cancel: cancel}
	r.mu.Lock()
	r.execs[key] = e
	r.mu.Unlock()
	go func() {
		res := r.execAll(ctx, ns, targets, rendered.Exec.Command, bound)
		cancel()
		r.mu.Lock()
		e.done, e.result = true, res
		r.mu.Unlock()
		r.queue.Add(ns + "/" + h.Session.GetName())
	}()
	return Result{State: Running, Requeue: bound}, nil
}

// execAll runs command in every target at once; it fails when one fails.
func (r *Runner) execAll(ctx context.Context, ns string, targets []target, command []string, bound time.Duration) Result {
	errs := make([]string, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stderr, err := r.cfg.Exec.Exec(ctx, ns, t.pod, t.container, command)
			if err == nil {
				return
			}
			msg := err.Error()
			if ctx.Err() != nil {
				msg = fmt.Sprintf("did not finish within %s", bound)
			}
			if line := lastLine(stderr); line != "" {
				msg += ": " + line
			}
			errs[i] = fmt.Sprintf("pod %s container %s: %s", t.pod, t.container, msg)
		}()
	}
	wg.Wait()
	var failed, ran []string
	for i, t := range targets {
		if errs[i] != "" {
			failed = append(failed, errs[i])
		} else {
			ran = append(ran, t.pod)
		}
	}
	if len(failed) > 0 {
		return Result{State: Failed, Message: strings.Join(failed, "; ")}
	}
	return Result{State: Succeeded, Message: "exec hook succeeded in pod " + strings.Join(ran, ", ")}
}

// Targets picks the containers an exec hook runs in: one per Running pod
// that mounts claim, containerName or else the first container that mounts
// it. Every such pod must consent (v1beta1.AnnotationExecHooks lists
// invoker or "*"); why names what is wrong when the hook cannot run. Not
// application pods, so never targets: Stow's own Job pods (a post hook
// runs as soon as the backup container has exited, while the kubelet may
// still report its pod Running; another configuration's backup may mount
// the claim meanwhile), and pods whose containers have all exited.
func Targets(pods []corev1.Pod, claim, invoker, containerName string) (out []target, why string) {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	ns := ""
	for i := range pods {
		p := &pods[i]
		ns = p.Namespace
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || stowJobPod(p) || exited(p) {
			continue
		}
		vol := ""
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				vol = v.Name
				break
			}
		}
		if vol == "" {
			continue
		}
		if !consents(p.Annotations[v1beta1.AnnotationExecHooks], invoker) {
			return nil, fmt.Sprintf("pod %s uses PVC %s but does not consent to exec hooks of %s: annotate it %s=%s (docs/hooks.md)",
				p.Name, claim, invoker, v1beta1.AnnotationExecHooks, invoker)
		}
		c := ""
		for _, ct := range p.Spec.Containers {
			if containerName != "" {
				if ct.Name == containerName {
					c = ct.Name
					break
				}
				continue
			}
			if slices.ContainsFunc(ct.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == vol }) {
				c = ct.Name
				break
			}
		}
		if c == "" {
			if containerName != "" {
				return nil, fmt.Sprintf("pod %s uses PVC %s but has no container %q (containerName)", p.Name, claim, containerName)
			}
			return nil, fmt.Sprintf("pod %s uses PVC %s in no container (set containerName)", p.Name, claim)
		}
		out = append(out, target{pod: p.Name, container: c})
	}
	if len(out) == 0 {
		where := "the namespace"
		if ns != "" {
			where = ns
		}
		return nil, fmt.Sprintf("no Running pod in %s mounts PVC %s, so the exec hook has nowhere to run: start the application that uses it, or use an HTTP hook", where, claim)
	}
	return out, ""
}

// stowJobPod tells whether p is a pod of one of Stow's Jobs (backup,
// restore, maintenance). Skipping a pod only keeps a hook out of it, so a
// pod that claims to be Stow's gains nothing by it.
func stowJobPod(p *corev1.Pod) bool {
	if p.Labels[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow {
		return false
	}
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "Job"
}

// exited tells whether every container of p has terminated: nothing is
// left to exec in, whatever phase the kubelet reports yet.
func exited(p *corev1.Pod) bool {
	cs := p.Status.ContainerStatuses
	if len(cs) == 0 {
		return false
	}
	for _, c := range cs {
		if c.State.Terminated == nil {
			return false
		}
	}
	return true
}

// consents tells whether an AnnotationExecHooks value lets invoker run
// exec hooks.
func consents(value, invoker string) bool {
	for _, v := range strings.Split(value, ",") {
		if v = strings.TrimSpace(v); v == "*" || (v != "" && v == invoker) {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
