package v1beta1

// The phase rules below are Stash's with two fixes:
// a disrupted executor fails its target, and a restore's success is derived
// from its hosts so metrics and phase always agree.

// ComputeBackupInvokerPhase derives a BackupConfiguration's phase from its conditions.
func ComputeBackupInvokerPhase(conds []Condition) BackupInvokerPhase {
	if c := GetCondition(conds, ValidationPassed); c != nil && c.Status == ConditionFalse && c.Reason == ResourceUnreadable {
		return BackupInvokerInvalid
	}
	if !IsConditionTrue(conds, RepositoryFound) || !IsConditionTrue(conds, BackendSecretFound) {
		return BackupInvokerNotReady
	}
	if IsConditionFalse(conds, ValidationPassed) {
		return BackupInvokerInvalid
	}
	if IsConditionTrue(conds, ValidationPassed) && IsConditionTrue(conds, CronJobCreated) &&
		IsConditionTrue(conds, BackupTargetFound) {
		return BackupInvokerReady
	}
	return BackupInvokerNotReady
}

// ComputeBackupTargetPhase derives one target's phase from its conditions and host stats.
func ComputeBackupTargetPhase(t BackupTargetStatus) TargetPhase {
	if IsConditionFalse(t.Conditions, BackupExecutorEnsured) ||
		IsConditionFalse(t.Conditions, PreBackupHookExecutionSucceeded) ||
		IsConditionFalse(t.Conditions, PostBackupHookExecutionSucceeded) ||
		IsConditionTrue(t.Conditions, BackupDisrupted) {
		return TargetFailed
	}
	if t.TotalHosts == nil {
		return TargetPending
	}
	done, failed := 0, false
	for _, h := range t.Stats {
		switch h.Phase {
		case HostSucceeded:
			done++
		case HostFailed:
			done++
			failed = true
		}
	}
	if done >= int(*t.TotalHosts) {
		if failed {
			return TargetFailed
		}
		return TargetSucceeded
	}
	return TargetRunning
}

// ComputeBackupSessionPhase derives a session's phase; the first matching rule wins.
func ComputeBackupSessionPhase(s BackupSessionStatus) BackupSessionPhase {
	c := s.Conditions
	if IsConditionFalse(c, MetricsPushed) {
		return BackupSessionFailed
	}
	if IsConditionTrue(c, BackupSkipped) {
		return BackupSessionSkipped
	}
	if IsConditionTrue(c, MetricsPushed) &&
		(IsConditionTrue(c, DeadlineExceeded) || IsConditionFalse(c, BackupHistoryCleaned)) {
		return BackupSessionFailed
	}
	if len(s.Targets) == 0 || allTargets(s.Targets, func(p TargetPhase) bool { return p == "" || p == TargetPending }) {
		if IsConditionTrue(c, MetricsPushed) {
			// Finalized without ever running (e.g. the deadline passed while
			// Pending): that is a failure, never a silent success.
			return BackupSessionFailed
		}
		return BackupSessionPending
	}
	if BackupTargetsCompleted(s.Targets) && IsConditionTrue(c, MetricsPushed) {
		if !BackupSucceeded(s) {
			return BackupSessionFailed
		}
		return BackupSessionSucceeded
	}
	return BackupSessionRunning
}

// BackupTargetsCompleted reports whether every target reached Succeeded or Failed.
func BackupTargetsCompleted(ts []BackupTargetStatus) bool {
	return len(ts) > 0 && allTargets(ts, func(p TargetPhase) bool { return p == TargetSucceeded || p == TargetFailed })
}

// BackupSucceeded reports whether the backup work itself succeeded: every target
// Succeeded and no post-backup action failed. Metrics use this so that
// session_success always equals the final phase.
func BackupSucceeded(s BackupSessionStatus) bool {
	c := s.Conditions
	if IsConditionTrue(c, DeadlineExceeded) || IsConditionFalse(c, BackupHistoryCleaned) ||
		IsConditionFalse(c, RetentionPolicyApplied) || IsConditionFalse(c, RepositoryMetricsPushed) ||
		IsConditionFalse(c, RepositoryIntegrityVerified) || IsConditionFalse(c, BackendRepositoryInitialized) {
		return false
	}
	return len(s.Targets) > 0 && allTargets(s.Targets, func(p TargetPhase) bool { return p == TargetSucceeded })
}

func allTargets(ts []BackupTargetStatus, ok func(TargetPhase) bool) bool {
	for _, t := range ts {
		if !ok(t.Phase) {
			return false
		}
	}
	return true
}

// IsFinal reports whether a backup session phase can no longer change.
func (p BackupSessionPhase) IsFinal() bool {
	return p == BackupSessionSucceeded || p == BackupSessionFailed || p == BackupSessionSkipped || p == BackupSessionUnknown
}

// ComputeRestoreTargetPhase derives the restore target phase from conditions and host stats.
func ComputeRestoreTargetPhase(s RestoreSessionStatus) TargetPhase {
	c := s.Conditions
	if IsConditionFalse(c, RestoreExecutorEnsured) || IsConditionFalse(c, PreRestoreHookExecutionSucceeded) ||
		IsConditionFalse(c, PostRestoreHookExecutionSucceeded) || IsConditionTrue(c, RestoreDisrupted) {
		return TargetFailed
	}
	if s.TotalHosts == nil || len(c) == 0 || IsConditionFalse(c, RestoreTargetFound) {
		return TargetPending
	}
	done, failed, unknown := 0, false, false
	for _, h := range s.Stats {
		switch h.Phase {
		case HostSucceeded:
			done++
		case HostFailed:
			done++
			failed = true
		case HostUnknown:
			done++
			unknown = true
		}
	}
	if done < int(*s.TotalHosts) {
		return TargetRunning
	}
	switch {
	case unknown:
		return TargetUnknown
	case failed:
		return TargetFailed
	}
	return TargetSucceeded
}

// ComputeRestoreSessionPhase derives a RestoreSession's phase; the first matching rule wins.
func ComputeRestoreSessionPhase(s RestoreSessionStatus) RestorePhase {
	c := s.Conditions
	if IsConditionFalse(c, MetricsPushed) {
		return RestoreFailed
	}
	if IsConditionTrue(c, MetricsPushed) && IsConditionTrue(c, DeadlineExceeded) {
		return RestoreFailed
	}
	if IsConditionFalse(c, ValidationPassed) {
		return RestoreInvalid
	}
	target := ComputeRestoreTargetPhase(s)
	if IsConditionTrue(c, MetricsPushed) {
		switch target {
		case TargetSucceeded:
			return RestoreSucceeded
		case TargetUnknown:
			return RestoreUnknown
		default:
			return RestoreFailed
		}
	}
	if len(c) == 0 || target == TargetPending ||
		IsConditionFalse(c, RepositoryFound) || IsConditionFalse(c, BackendSecretFound) {
		return RestorePending
	}
	return RestoreRunning
}

// IsFinal reports whether a restore phase can no longer change.
func (p RestorePhase) IsFinal() bool {
	return p == RestoreSucceeded || p == RestoreFailed || p == RestoreUnknown
}
