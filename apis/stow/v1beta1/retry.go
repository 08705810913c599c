package v1beta1

import "time"

// Retries are bounded so that no user can make Stow create Jobs without end
// (issue 13): a retry chain is at most MaxRetryLimit sessions long, whatever
// a hand-written session's retryLeft says, and retries are at least
// MinRetryDelay apart.
const (
	// MaxRetryLimit is the largest retryConfig.maxRetry (and retryLeft) the
	// schema admits.
	MaxRetryLimit = int32(10)
	// MinRetryDelay is the shortest wait before a retry; a smaller
	// retryConfig.delay (including none) waits this long.
	MinRetryDelay = 30 * time.Second
)

// RetryDelay is how long a failed session of bc waits before its retry.
func (bc *BackupConfiguration) RetryDelay() time.Duration {
	var d time.Duration
	if rc := bc.Spec.RetryConfig; rc != nil && rc.Delay.Err() == nil {
		d = rc.Delay.Duration
	}
	return max(d, MinRetryDelay)
}

// RetriesLeft is how many retries a failed session s of bc may still have:
// its spec.retryLeft, never more than the configuration's maxRetry. A
// session written by hand cannot ask for more retries than its
// configuration allows, and lowering maxRetry shortens running chains.
func (bc *BackupConfiguration) RetriesLeft(s *BackupSession) int32 {
	return max(0, min(s.Spec.RetryLeft, bc.MaxRetry()))
}
