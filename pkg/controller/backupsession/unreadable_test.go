package backupsession

import (
	"testing"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// A session the operator could not decode (a pkg/lenient stand-in) fails
// with the cause naming the field, runs nothing and is not retried; the
// other session of the configuration runs.
func TestUnreadableSessionFailsAloneNamingTheField(t *testing.T) {
	const cause = "the stored BackupSession cannot be read (field spec.retryLeft): json: cannot unmarshal number 99999999999 into Go struct field BackupSessionSpec.spec.retryLeft of type int32"
	bad := newSession("bad", "", t0, "")
	bad.Annotations = map[string]string{v1beta1.AnnotationDecodeError: cause}
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) {
		bc.Spec.RetryConfig = &v1beta1.RetryConfig{MaxRetry: 3}
	})
	f := newFixture(t, bc, repository("repo"), bad, newSession("bc-1", "bc", t0.Add(time.Second), ""))
	f.sync("bad")
	f.clock.Step(time.Hour)
	f.sync("bad")
	s := f.session("bad")
	if s.Status.Phase != v1beta1.BackupSessionFailed || s.Status.Reason != cause {
		t.Fatalf("phase %s reason %q", s.Status.Phase, s.Status.Reason)
	}
	if c := cond(t, s.Status.Conditions, v1beta1.ValidationPassed, v1beta1.ConditionFalse); c.Reason != v1beta1.ResourceValidationFailed {
		t.Errorf("ValidationPassed reason %s", c.Reason)
	}
	if !hasEvent(f.events(), EventInvalid) {
		t.Error("no InvalidBackupSession event")
	}
	if f.built != 0 || s.Status.NextRetry != nil || len(f.sessionsOf()) != 2 {
		t.Fatalf("built %d Jobs, nextRetry %v, %d sessions: an unreadable session must run nothing", f.built, s.Status.NextRetry, len(f.sessionsOf()))
	}
	f.sync("bc-1")
	if s := f.session("bc-1"); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("the other session is %s, want Running", s.Status.Phase)
	}
}
