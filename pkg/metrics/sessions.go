package metrics

import (
	"context"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// SessionPusher is what the controllers need from metrics: push the session
// and target families when a session ends (or is skipped), and drop an
// invoker's Pushgateway group when the invoker is deleted. Implementations
// push to the embedded Pushgateway or to an external one.
type SessionPusher interface {
	// BackupSessionFinished pushes session and target metrics of a finished
	// session. succeeded must be the session's final phase == Succeeded, so the
	// success gauge and the phase always agree.
	BackupSessionFinished(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession, succeeded bool) error
	// BackupSessionSkipped counts a skipped session for the invoker.
	BackupSessionSkipped(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession) error
	// RestoreSessionFinished pushes restore session and target metrics.
	RestoreSessionFinished(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, succeeded bool) error
	// DeleteInvokerGroup deletes the group job=<lower(kind)>-<namespace>-<name>.
	DeleteInvokerGroup(ctx context.Context, kind, namespace, name string) error
}

// Nop is a SessionPusher that does nothing; for tests and --metrics-enabled=false.
type Nop struct{}

func (Nop) BackupSessionFinished(context.Context, *v1beta1.BackupConfiguration, *v1beta1.Repository, *v1beta1.BackupSession, bool) error {
	return nil
}
func (Nop) BackupSessionSkipped(context.Context, *v1beta1.BackupConfiguration, *v1beta1.Repository, *v1beta1.BackupSession) error {
	return nil
}
func (Nop) RestoreSessionFinished(context.Context, *v1beta1.RestoreSession, *v1beta1.Repository, bool) error {
	return nil
}
func (Nop) DeleteInvokerGroup(context.Context, string, string, string) error { return nil }
