package resolve

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestHookJob(t *testing.T) {
	h := v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{HTTPGetAction: v1beta1.HTTPGetAction{Host: "receiver", Port: intstr.FromInt32(8080)}, Body: `{"a":"b"}`}}
	owner := v1beta1.OwnerRef(v1beta1.KindBackupSession, "s", "uid-1")
	job, err := HookJob("stow-hook-postbackup-s", "team-a", owner, v1beta1.HookPostBackup, h, time.Minute, 2*time.Minute, Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "team-a" || job.OwnerReferences[0].UID != "uid-1" || *job.Spec.BackoffLimit != 0 || *job.Spec.ActiveDeadlineSeconds != 120 {
		t.Fatalf("job meta/spec: %+v %+v", job.ObjectMeta, job.Spec)
	}
	pod := job.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || len(pod.Volumes) != 0 || pod.ServiceAccountName != "" {
		t.Fatalf("hook pod has a token or volumes: %+v", pod)
	}
	if v := restrictedViolations(pod); len(v) > 0 {
		t.Fatalf("hook pod is not restricted: %v", v)
	}
	c := pod.Containers[0]
	if len(c.EnvFrom) != 0 || c.Image != image {
		t.Fatalf("hook container: %+v", c)
	}
	args := strings.Join(c.Args, " ")
	var got v1beta1.Handler
	if !strings.HasPrefix(args, "run-hook --hook=postBackup --handler=") ||
		json.Unmarshal([]byte(strings.TrimPrefix(c.Args[2], "--handler=")), &got) != nil || got.HTTPPost.Body != `{"a":"b"}` {
		t.Fatalf("args %q", c.Args)
	}
	if _, err := HookJob("n", "ns", owner, v1beta1.HookPreBackup, h, time.Minute, time.Minute, Options{}); err == nil {
		t.Fatal("no image: want an error")
	}
}
