package executor

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowlisters "github.com/stowhq/stow/client/listers/stow/v1beta1"
)

// TaskAndFunctions reads a Task and every Function its steps name. A missing
// one is an error with a one-line cause the session shows to the user.
func TaskAndFunctions(tasks stowlisters.TaskLister, fns stowlisters.FunctionLister, taskName string) (*v1beta1.Task, map[string]*v1beta1.Function, error) {
	task, err := tasks.Get(taskName)
	if apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("Task %q not found (is the operator's built-in catalog installed?)", taskName)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read Task %q: %v", taskName, err)
	}
	if msg := v1beta1.DecodeError(task); msg != "" {
		return nil, nil, fmt.Errorf("Task %q is invalid: %s", taskName, msg)
	}
	out := map[string]*v1beta1.Function{}
	for _, step := range task.Spec.Steps {
		fn, err := fns.Get(step.Name)
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("Function %q used by Task %q not found", step.Name, taskName)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read Function %q: %v", step.Name, err)
		}
		if msg := v1beta1.DecodeError(fn); msg != "" {
			return nil, nil, fmt.Errorf("Function %q used by Task %q is invalid: %s", step.Name, taskName, msg)
		}
		out[step.Name] = fn
	}
	return task, out, nil
}

// TaskUse returns why namespace ns may not use task or one of its Functions
// (spec.allowedNamespaces, set by the admin who wrote them), or "".
// nsLabels is called only when a label selector must be evaluated.
func TaskUse(ns string, nsLabels func() map[string]string, task *v1beta1.Task, fns map[string]*v1beta1.Function) string {
	var labels map[string]string
	read := false
	check := func(kind, name string, sel *v1beta1.NamespaceSelection) string {
		if sel == nil {
			return ""
		}
		if sel.Selector != nil && !read {
			labels, read = nsLabels(), true
		}
		ok, err := sel.Selects(ns, labels)
		if err != nil {
			return fmt.Sprintf("%s %q: spec.allowedNamespaces: %v", kind, name, err)
		}
		if !ok {
			return fmt.Sprintf("%s %q may not be used in namespace %s (its spec.allowedNamespaces does not select it)", kind, name, ns)
		}
		return ""
	}
	if task == nil {
		return ""
	}
	if why := check("Task", task.Name, task.Spec.AllowedNamespaces); why != "" {
		return why
	}
	for _, step := range task.Spec.Steps {
		if fn := fns[step.Name]; fn != nil {
			if why := check("Function", fn.Name, fn.Spec.AllowedNamespaces); why != "" {
				return why
			}
		}
	}
	return ""
}
