package v1beta1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func cond(t string, s ConditionStatus) Condition { return Condition{Type: t, Status: s} }

func hosts(n int32) *int32 { return &n }

func TestComputeBackupInvokerPhase(t *testing.T) {
	allTrue := []Condition{cond(RepositoryFound, ConditionTrue), cond(BackendSecretFound, ConditionTrue),
		cond(ValidationPassed, ConditionTrue), cond(BackupTargetFound, ConditionTrue), cond(CronJobCreated, ConditionTrue)}
	with := func(c Condition) []Condition {
		out := append([]Condition(nil), allTrue...)
		SetCondition(&out, c, metav1.Now())
		return out
	}
	cases := []struct {
		name  string
		conds []Condition
		want  BackupInvokerPhase
	}{
		{"nothing yet", nil, BackupInvokerNotReady},
		{"all true", allTrue, BackupInvokerReady},
		{"repository missing", with(cond(RepositoryFound, ConditionFalse)), BackupInvokerNotReady},
		{"secret unknown", with(cond(BackendSecretFound, ConditionUnknown)), BackupInvokerNotReady},
		{"invalid", with(cond(ValidationPassed, ConditionFalse)), BackupInvokerInvalid},
		{"invalid but repo missing is NotReady", append(with(cond(ValidationPassed, ConditionFalse))[:0:0],
			cond(RepositoryFound, ConditionFalse), cond(BackendSecretFound, ConditionTrue), cond(ValidationPassed, ConditionFalse)), BackupInvokerNotReady},
		{"pvc gone", with(cond(BackupTargetFound, ConditionFalse)), BackupInvokerNotReady},
		{"cronjob failed", with(cond(CronJobCreated, ConditionFalse)), BackupInvokerNotReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeBackupInvokerPhase(tc.conds); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestComputeBackupTargetPhase(t *testing.T) {
	cases := []struct {
		name string
		t    BackupTargetStatus
		want TargetPhase
	}{
		{"no hosts yet", BackupTargetStatus{}, TargetPending},
		{"running", BackupTargetStatus{TotalHosts: hosts(1)}, TargetRunning},
		{"succeeded", BackupTargetStatus{TotalHosts: hosts(1), Stats: []HostBackupStats{{Hostname: "host-0", Phase: HostSucceeded}}}, TargetSucceeded},
		{"host failed", BackupTargetStatus{TotalHosts: hosts(1), Stats: []HostBackupStats{{Hostname: "host-0", Phase: HostFailed}}}, TargetFailed},
		{"executor failed", BackupTargetStatus{Conditions: []Condition{cond(BackupExecutorEnsured, ConditionFalse)}}, TargetFailed},
		{"disrupted while running", BackupTargetStatus{TotalHosts: hosts(1), Conditions: []Condition{cond(BackupDisrupted, ConditionTrue)}}, TargetFailed},
		{"post hook failed", BackupTargetStatus{TotalHosts: hosts(1), Conditions: []Condition{cond(PostBackupHookExecutionSucceeded, ConditionFalse)},
			Stats: []HostBackupStats{{Phase: HostSucceeded}}}, TargetFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeBackupTargetPhase(tc.t); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestComputeBackupSessionPhase(t *testing.T) {
	done := func(p TargetPhase) []BackupTargetStatus { return []BackupTargetStatus{{Phase: p}} }
	pushed := cond(MetricsPushed, ConditionTrue)
	cases := []struct {
		name string
		s    BackupSessionStatus
		want BackupSessionPhase
	}{
		{"new", BackupSessionStatus{}, BackupSessionPending},
		{"skipped", BackupSessionStatus{Conditions: []Condition{cond(BackupSkipped, ConditionTrue)}}, BackupSessionSkipped},
		{"running", BackupSessionStatus{Targets: done(TargetRunning)}, BackupSessionRunning},
		{"done but metrics not pushed", BackupSessionStatus{Targets: done(TargetSucceeded)}, BackupSessionRunning},
		{"succeeded", BackupSessionStatus{Targets: done(TargetSucceeded), Conditions: []Condition{pushed}}, BackupSessionSucceeded},
		{"target failed", BackupSessionStatus{Targets: done(TargetFailed), Conditions: []Condition{pushed}}, BackupSessionFailed},
		{"metrics push failed", BackupSessionStatus{Targets: done(TargetSucceeded), Conditions: []Condition{cond(MetricsPushed, ConditionFalse)}}, BackupSessionFailed},
		{"retention failed", BackupSessionStatus{Targets: done(TargetSucceeded), Conditions: []Condition{pushed, cond(RetentionPolicyApplied, ConditionFalse)}}, BackupSessionFailed},
		{"integrity failed", BackupSessionStatus{Targets: done(TargetSucceeded), Conditions: []Condition{pushed, cond(RepositoryIntegrityVerified, ConditionFalse)}}, BackupSessionFailed},
		{"deadline", BackupSessionStatus{Targets: done(TargetRunning), Conditions: []Condition{pushed, cond(DeadlineExceeded, ConditionTrue)}}, BackupSessionFailed},
		{"history cleanup failed", BackupSessionStatus{Targets: done(TargetSucceeded), Conditions: []Condition{pushed, cond(BackupHistoryCleaned, ConditionFalse)}}, BackupSessionFailed},
		{"finalized while pending is a failure", BackupSessionStatus{Targets: done(TargetPending), Conditions: []Condition{pushed}}, BackupSessionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeBackupSessionPhase(tc.s); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			// session_success must equal the final phase (when it could be pushed at all).
			if tc.want.IsFinal() && tc.want != BackupSessionSkipped && !IsConditionFalse(tc.s.Conditions, MetricsPushed) {
				if BackupSucceeded(tc.s) != (tc.want == BackupSessionSucceeded) {
					t.Fatalf("BackupSucceeded=%v disagrees with phase %s", BackupSucceeded(tc.s), tc.want)
				}
			}
		})
	}
}

func TestComputeRestoreSessionPhase(t *testing.T) {
	ready := []Condition{cond(RepositoryFound, ConditionTrue), cond(BackendSecretFound, ConditionTrue),
		cond(RestoreTargetFound, ConditionTrue), cond(RestoreExecutorEnsured, ConditionTrue)}
	plus := func(cs ...Condition) []Condition { return append(append([]Condition(nil), ready...), cs...) }
	cases := []struct {
		name string
		s    RestoreSessionStatus
		want RestorePhase
	}{
		{"new", RestoreSessionStatus{}, RestorePending},
		{"invalid", RestoreSessionStatus{Conditions: []Condition{cond(ValidationPassed, ConditionFalse)}}, RestoreInvalid},
		{"repo missing", RestoreSessionStatus{Conditions: []Condition{cond(RepositoryFound, ConditionFalse)}}, RestorePending},
		{"running", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: ready}, RestoreRunning},
		{"host done, metrics not pushed", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: ready, Stats: []HostRestoreStats{{Phase: HostSucceeded}}}, RestoreRunning},
		{"succeeded", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: plus(cond(MetricsPushed, ConditionTrue)), Stats: []HostRestoreStats{{Phase: HostSucceeded}}}, RestoreSucceeded},
		{"host failed", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: plus(cond(MetricsPushed, ConditionTrue)), Stats: []HostRestoreStats{{Phase: HostFailed}}}, RestoreFailed},
		{"disrupted", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: plus(cond(RestoreDisrupted, ConditionTrue), cond(MetricsPushed, ConditionTrue))}, RestoreFailed},
		{"deadline", RestoreSessionStatus{TotalHosts: hosts(1), Conditions: plus(cond(DeadlineExceeded, ConditionTrue), cond(MetricsPushed, ConditionTrue))}, RestoreFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeRestoreSessionPhase(tc.s); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(100, 0))
	t1 := metav1.NewTime(time.Unix(200, 0))
	var cs []Condition
	if !SetCondition(&cs, Condition{Type: "A", Status: ConditionTrue, Reason: "R"}, t0) {
		t.Fatal("first set must report a change")
	}
	if SetCondition(&cs, Condition{Type: "A", Status: ConditionTrue, Reason: "R"}, t1) {
		t.Fatal("identical set must report no change")
	}
	SetCondition(&cs, Condition{Type: "A", Status: ConditionTrue, Reason: "R", Message: "m"}, t1)
	if !cs[0].LastTransitionTime.Equal(&t0) {
		t.Fatal("message change must keep the transition time")
	}
	SetCondition(&cs, Condition{Type: "A", Status: ConditionFalse, Reason: "X"}, t1)
	if !cs[0].LastTransitionTime.Equal(&t1) || len(cs) != 1 {
		t.Fatalf("status change must move the transition time: %+v", cs)
	}
	if !RemoveCondition(&cs, "A") || len(cs) != 0 {
		t.Fatal("remove failed")
	}
}

func TestResolveSchedule(t *testing.T) {
	for _, macro := range []string{ScheduleHourlyRandom, ScheduleDailyRandom, ScheduleWeeklyRandom} {
		a := ResolveSchedule("demo", "one", macro)
		if a != ResolveSchedule("demo", "one", macro) {
			t.Fatalf("%s not stable", macro)
		}
		if _, err := ParseSchedule(a); err != nil {
			t.Fatalf("%s resolved to invalid %q: %v", macro, a, err)
		}
	}
	// Spread: 50 configurations must not all land on the same minute.
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		seen[ResolveSchedule("demo", string(rune('a'+i%26))+string(rune('a'+i/26)), ScheduleHourlyRandom)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct minutes for 50 configurations", len(seen))
	}
	if got := ResolveSchedule("demo", "one", "*/5 * * * *"); got != "*/5 * * * *" {
		t.Fatalf("plain schedule changed: %q", got)
	}
	s, _ := ParseSchedule("0 * * * *")
	if d := ScheduleInterval(s, time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)); d != time.Hour {
		t.Fatalf("interval = %v", d)
	}
}
