package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GetCondition returns the condition of the given type, or nil.
func GetCondition(conds []Condition, condType string) *Condition {
	for i := range conds {
		if conds[i].Type == condType {
			return &conds[i]
		}
	}
	return nil
}

// HasCondition tells whether a condition of the type is recorded at all.
func HasCondition(conds []Condition, condType string) bool {
	return GetCondition(conds, condType) != nil
}

// IsConditionTrue tells whether the condition exists with status True.
func IsConditionTrue(conds []Condition, condType string) bool {
	c := GetCondition(conds, condType)
	return c != nil && c.Status == ConditionTrue
}

// IsConditionFalse tells whether the condition exists with status False.
func IsConditionFalse(conds []Condition, condType string) bool {
	c := GetCondition(conds, condType)
	return c != nil && c.Status == ConditionFalse
}

// SetCondition upserts c by type. LastTransitionTime changes only when the
// status changes, so repeated reconciles do not churn the object. It reports
// whether anything changed.
func SetCondition(conds *[]Condition, c Condition, now metav1.Time) bool {
	old := GetCondition(*conds, c.Type)
	if old == nil {
		c.LastTransitionTime = now
		*conds = append(*conds, c)
		return true
	}
	if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message &&
		old.ObservedGeneration == c.ObservedGeneration && old.Severity == c.Severity {
		return false
	}
	if old.Status != c.Status {
		c.LastTransitionTime = now
	} else {
		c.LastTransitionTime = old.LastTransitionTime
	}
	*old = c
	return true
}

// RemoveCondition drops the condition of the type; it reports whether one was removed.
func RemoveCondition(conds *[]Condition, condType string) bool {
	for i := range *conds {
		if (*conds)[i].Type == condType {
			*conds = append((*conds)[:i], (*conds)[i+1:]...)
			return true
		}
	}
	return false
}
