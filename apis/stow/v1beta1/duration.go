package v1beta1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a Go duration such as 90s, 15m or 1h30m (time.ParseDuration
// syntax; units ns, us, ms, s, m, h).
//
// Unlike metav1.Duration it never fails to decode. A list is decoded as one
// JSON document, so one object whose duration does not parse (admitted by an
// older, looser CRD, or written while the schema was relaxed) would make every
// List of its kind fail, and with it the operator's informer for all
// namespaces. Instead the text is kept, Err reports the problem, and the
// operator ends that one object Invalid naming the field. The CRD schema
// rejects such values at admission (pattern and CEL below), so this is the
// second line of defense.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`
// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a Go duration such as 90s, 15m or 1h30m"
type Duration struct {
	time.Duration `json:"-"`
	// raw is the decoded text when it did not parse; encoding writes it back
	// unchanged, so a status update never rewrites the user's spec.
	raw string
	// invalid is why raw did not parse.
	invalid string
}

// NewDuration returns a valid Duration of d.
func NewDuration(d time.Duration) *Duration { return &Duration{Duration: d} }

// Err tells why the decoded value is not a duration; nil when it is one.
func (d *Duration) Err() error {
	if d == nil || d.invalid == "" {
		return nil
	}
	return fmt.Errorf("%q is not a duration (%s); use Go syntax such as 90s, 15m or 1h30m", d.raw, d.invalid)
}

// UnmarshalJSON accepts any JSON value and never fails: a value that is not
// a valid duration string is remembered for Err.
func (d *Duration) UnmarshalJSON(b []byte) error {
	*d = Duration{}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.raw, d.invalid = string(b), "not a string"
		return nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.raw, d.invalid = s, err.Error()
	case v < 0:
		d.raw, d.invalid = s, "negative"
	default:
		d.Duration = v
	}
	return nil
}

// MarshalJSON writes a valid duration as Go formats it, and an invalid one
// as it was read.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.invalid != "" {
		if json.Valid([]byte(d.raw)) && d.invalid == "not a string" {
			return []byte(d.raw), nil
		}
		return json.Marshal(d.raw)
	}
	return json.Marshal(d.Duration.String())
}

// String is the duration, or the text that did not parse.
func (d Duration) String() string {
	if d.invalid != "" {
		return d.raw
	}
	return d.Duration.String()
}
