package executor

import "time"

// Requeue collects the earliest time-based transition found during one sync
// (a Pending threshold, a deadline, a retry delay), so the key is requeued once.
type Requeue struct{ D time.Duration }

// After asks for a requeue in d; the earliest request wins.
func (r *Requeue) After(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if r.D == 0 || d < r.D {
		r.D = d
	}
}
