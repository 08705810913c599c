package executor

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestTaskUse(t *testing.T) {
	fn := &v1beta1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}}
	task := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: "node-backup"}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{{Name: "fn"}}}}
	fns := map[string]*v1beta1.Function{"fn": fn}
	labels := func() map[string]string { return map[string]string{"team": "infra"} }
	noLabels := func() map[string]string { t.Fatal("labels read without a selector"); return nil }

	if why := TaskUse("any", noLabels, task, fns); why != "" {
		t.Errorf("unrestricted (built-in) Task: %s", why)
	}
	task.Spec.AllowedNamespaces = &v1beta1.NamespaceSelection{Names: []string{"infra"}}
	if why := TaskUse("infra", noLabels, task, fns); why != "" {
		t.Errorf("listed namespace: %s", why)
	}
	if why := TaskUse("tenant", noLabels, task, fns); !strings.Contains(why, `Task "node-backup" may not be used in namespace tenant`) {
		t.Errorf("other namespace: %q", why)
	}
	task.Spec.AllowedNamespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "infra"}}
	if why := TaskUse("infra-2", labels, task, fns); why != "" {
		t.Errorf("selected namespace: %s", why)
	}
	task.Spec.AllowedNamespaces = nil
	fn.Spec.AllowedNamespaces = &v1beta1.NamespaceSelection{}
	if why := TaskUse("tenant", noLabels, task, fns); !strings.Contains(why, `Function "fn" may not be used`) {
		t.Errorf("restricted Function: %q", why)
	}
}
