package v1beta1

// Run is the record of maintenance task (MaintenanceCheck, ...), or nil
// when s is nil, the task has not run or is unknown. The repository
// controller reads it to plan, kubectl stow to wait for an answer.
func (s *MaintenanceStatus) Run(task string) *MaintenanceRun {
	if s == nil {
		return nil
	}
	switch task {
	case MaintenanceCheck:
		return s.Check
	case MaintenancePrune:
		return s.Prune
	case MaintenanceRefresh:
		return s.Refresh
	case MaintenanceUnlock:
		return s.Unlock
	}
	return nil
}
