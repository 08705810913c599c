// Package executor holds what the BackupSession and RestoreSession controllers
// share about the Jobs they run: how a Job is marked as Stow's, how its pod is
// watched (the watchdog that keeps a session from hanging), how a step's result
// is read from a termination message, and the per-Repository gate that keeps
// two Jobs from using one restic repository at once.
package executor
