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
