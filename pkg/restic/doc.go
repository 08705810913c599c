// Package restic drives the restic CLI (0.19.1) for Stow: it builds the
// repository location and environment from a v1beta1.Backend and its Secret,
// runs restic with --json and turns its output into Stow's status types.
//
// Secrets travel only through restic's environment, never its arguments, and
// are blanked out of every message this package produces. Restic's exit codes
// are taken at their word: 3 (unreadable source files) is a failure, 10 (no
// repository) is the only reason to run init, 12 is a wrong password.
package restic
