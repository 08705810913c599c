package hook

import (
	"fmt"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Outcome is what a post hook's executionPolicy decides on.
type Outcome struct {
	// Failed: the backup or restore failed (a step, a lost pod, the
	// deadline, a Job that could not be made).
	Failed bool
	// RetriesLeft is how many retry sessions a failed session still leads
	// to (spec.retryConfig); always 0 for a restore.
	RetriesLeft int32
}

// ShouldRun tells whether a post hook with policy runs after o; when it does
// not, why says so (the True condition's message).
func ShouldRun(policy v1beta1.HookExecutionPolicy, o Outcome) (run bool, why string) {
	switch policy {
	case "", v1beta1.ExecuteAlways:
		return true, ""
	case v1beta1.ExecuteOnSuccess:
		if o.Failed {
			return false, "skipped: executionPolicy is OnSuccess and the session failed"
		}
		return true, ""
	case v1beta1.ExecuteOnFailure:
		if !o.Failed {
			return false, "skipped: executionPolicy is OnFailure and the session succeeded"
		}
		return true, ""
	case v1beta1.ExecuteOnFinalRetryFailure:
		if !o.Failed {
			return false, "skipped: executionPolicy is OnFinalRetryFailure and the session succeeded"
		}
		if o.RetriesLeft > 0 {
			return false, fmt.Sprintf("skipped: executionPolicy is OnFinalRetryFailure and %d retries are left", o.RetriesLeft)
		}
		return true, ""
	}
	// The CRD's enum refuses anything else; an object written under a
	// looser schema runs its hook rather than silently dropping it.
	return true, ""
}
