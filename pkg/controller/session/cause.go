package session

import "github.com/stowhq/stow/apis/stow/v1beta1"

// Cause is a condition that tells why a session did not succeed: the
// condition of Type with Status, whose message, after Prefix, says why.
type Cause struct {
	Type   string
	Status v1beta1.ConditionStatus
	Prefix string
}

// FirstCause is the message of the first of causes that holds in conds.
func FirstCause(conds []v1beta1.Condition, causes ...Cause) (string, bool) {
	for _, c := range causes {
		if cd := v1beta1.GetCondition(conds, c.Type); cd != nil && cd.Status == c.Status {
			return c.Prefix + cd.Message, true
		}
	}
	return "", false
}
