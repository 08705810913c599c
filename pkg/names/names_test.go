package names

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestNamesAreValidAndDeterministic(t *testing.T) {
	long := strings.Repeat("a.b-", 40)
	cases := []struct {
		name string
		got  string
		max  int
	}{
		{"cronjob", CronJob("nightly"), 52},
		{"cronjob long", CronJob(long), 52},
		{"backup job", BackupJob("nightly-1700000000"), 63},
		{"backup job long", BackupJob(long + "-1700000000"), 63},
		{"restore job", RestoreJob(long, 0), 63},
		{"restore job ordinal", RestoreJob(long, 3), 63},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.got) > tc.max {
				t.Fatalf("%q is %d characters, max %d", tc.got, len(tc.got), tc.max)
			}
			if errs := validation.IsDNS1123Label(tc.got); len(errs) > 0 {
				t.Fatalf("%q: %v", tc.got, errs)
			}
		})
	}
	if CronJob(long) != CronJob(long) || CronJob(long+"x") == CronJob(long+"y") {
		t.Fatal("shortened names must be stable and distinct")
	}
	if got := CronJob("nightly"); got != "stow-trigger-nightly" {
		t.Fatalf("CronJob = %q", got)
	}
	if RestoreJob("r", 0) == RestoreJob("r", 1) {
		t.Fatal("ordinals must get distinct Jobs")
	}
}

func TestBackupSessionName(t *testing.T) {
	if got := BackupSession("nightly", 1700000000); got != "nightly-1700000000" {
		t.Fatalf("got %q", got)
	}
}

func TestPushgatewayJob(t *testing.T) {
	if got := PushgatewayJob("BackupConfiguration", "demo", "nfs-pvc-backup"); got != "backupconfiguration-demo.nfs-pvc-backup" {
		t.Fatalf("got %q", got)
	}
	if a, b := PushgatewayJob("BackupConfiguration", "ns", "x-c"), PushgatewayJob("BackupConfiguration", "ns-x", "c"); a == b {
		t.Fatalf("ns/x-c and ns-x/c share the group %q", a)
	}
}

func TestSessionLabels(t *testing.T) {
	bc := &v1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bc", Namespace: "demo"},
		Spec: v1beta1.BackupConfigurationSpec{Target: &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: "data"}}}}
	l := SessionLabels(bc)
	if l[v1beta1.LabelInvokerName] != "bc" || l[v1beta1.LabelTargetName] != "data" || l[v1beta1.LabelTargetNamespace] != "demo" {
		t.Fatalf("labels = %v", l)
	}
}

func TestLabelValueFits(t *testing.T) {
	long := strings.Repeat("data.", 30)
	v := LabelValue(long)
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 || v != LabelValue(long) {
		t.Fatalf("%q: %v", v, errs)
	}
	if LabelValue("data") != "data" {
		t.Fatal("short names must stay as they are")
	}
}
