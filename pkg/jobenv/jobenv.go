// Package jobenv is the part of the operator-to-Job contract that users may
// not change: environment variables the operator sets on every container of a
// backup or restore Job, after the Task, its parameters and runtimeSettings
// are applied. Task parameters and Function templates (${VAR}) are the user's
// to shape; what a snapshot is tagged with, which operator decides whether a
// lock holder still runs, and how long to wait for a lock are not.
//
// Kubernetes gives `env` precedence over `envFrom`, so neither the storage
// Secret nor runtimeSettings.container.envFrom can override these; the
// resolver replaces any `env` entry of the same name. Reserved lists them
// with the other variables a user's runtimeSettings may not set.
package jobenv

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/pkg/identity"
)

// Variable names.
const (
	Namespace   = "STOW_NAMESPACE"
	InvokerKind = "STOW_INVOKER_KIND"
	InvokerName = "STOW_INVOKER_NAME"
	TargetKind  = "STOW_TARGET_KIND"
	TargetName  = "STOW_TARGET_NAME"
	// OperatorURL is where the runner asks whether a lock holder still runs.
	OperatorURL = "STOW_OPERATOR_URL"
	// LockHostPrefix starts the pod hostname of every Stow Job pod of this
	// cluster, so restic locks they took can be recognized.
	LockHostPrefix = "STOW_LOCK_HOST_PREFIX"
	// LockDeadline (RFC 3339) is when the runner stops waiting for a lock
	// held by someone else and fails with the holder's name.
	LockDeadline = "STOW_LOCK_DEADLINE"
	// Resolved (JSON) lists the snapshots a restore without rules restores,
	// as the operator found them in the target's Snapshot records, so the
	// runner need not list the repository to find them.
	Resolved = "STOW_RESOLVED_SNAPSHOTS"
	// ExtraMounts (comma-separated) are the mount paths of a restore's
	// further new PVCs (volumeClaimTemplates after the first): a snapshot
	// path is restored into the mount path it was backed up at or lies under.
	ExtraMounts = "STOW_EXTRA_TARGET_MOUNTS"
	// AsOf (RFC 3339) replaces "latest" by "newest taken at or before AsOf"
	// in a restore's snapshot choice (RestoreSession spec.restoreAsOf).
	AsOf = "STOW_RESTORE_AS_OF"
)

// ResolvedSnapshot is a snapshot the operator chose for a restore: what the
// runner needs to restore it without asking restic first.
type ResolvedSnapshot struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Paths     []string  `json:"paths"`
	MountPath string    `json:"mountPath,omitempty"`
}

// Contract is what the operator tells a Job through these variables.
type Contract struct {
	Identity       identity.Identity
	OperatorURL    string
	LockHostPrefix string
	LockDeadline   time.Time
	Resolved       []ResolvedSnapshot
	ExtraMounts    []string
	AsOf           time.Time
}

// Env renders c as container environment variables. Every variable of the
// contract is set, empty when unused: an `env` entry wins over every
// `envFrom` source, so no Secret or ConfigMap (the storage Secret included)
// can supply one, say a STOW_RESOLVED_SNAPSHOTS naming another target's
// snapshots.
func (c Contract) Env() []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: Namespace, Value: c.Identity.Namespace},
		{Name: InvokerKind, Value: c.Identity.InvokerKind},
		{Name: InvokerName, Value: c.Identity.InvokerName},
		{Name: TargetKind, Value: c.Identity.TargetKind},
		{Name: TargetName, Value: c.Identity.TargetName},
		{Name: OperatorURL, Value: c.OperatorURL},
		{Name: LockHostPrefix, Value: c.LockHostPrefix},
		{Name: LockDeadline},
		{Name: Resolved},
		{Name: AsOf},
		{Name: ExtraMounts},
	}
	for i := range env {
		switch env[i].Name {
		case LockDeadline:
			if !c.LockDeadline.IsZero() {
				env[i].Value = c.LockDeadline.UTC().Format(time.RFC3339)
			}
		case Resolved:
			if len(c.Resolved) > 0 {
				raw, _ := json.Marshal(c.Resolved) // plain strings and times: cannot fail
				env[i].Value = string(raw)
			}
		case AsOf:
			if !c.AsOf.IsZero() {
				env[i].Value = c.AsOf.UTC().Format(time.RFC3339Nano)
			}
		case ExtraMounts:
			env[i].Value = strings.Join(c.ExtraMounts, ",")
		}
	}
	return env
}

// reservedPrefixes and reservedNames are environment variables that steer
// Stow's runner, restic or the programs of a Job's containers: the
// operator's contract, restic's own settings, the loader, where programs
// and certificates are found, and what Stow sets itself. A user's
// runtimeSettings may not set them (Reserved).
var reservedPrefixes = []struct{ prefix, what string }{
	{"STOW_", "Stow's runner (the operator's contract: snapshot identity, locks, what a restore restores; STOW_RESTIC: the program run as restic)"},
	{"RESTIC_", "restic's own settings (repository, password, password command, cache)"},
	{"LD_", "the dynamic loader (code loaded into every program of the container)"},
}

var reservedNames = map[string]string{
	"PATH":              "where the container's programs are found",
	"HOME":              "the home directory of the runner and restic",
	"TMPDIR":            "where the runner and restic keep temporary files",
	"SSL_CERT_FILE":     "the certificates restic trusts",
	"SSL_CERT_DIR":      "the certificates restic trusts",
	"CA_CERT_DATA":      "the certificate authority restic trusts for the repository (a key of the storage Secret)",
	"GODEBUG":           "the Go runtime's security defaults (TLS, X.509) of the runner and restic",
	"NICE_ADJUSTMENT":   "restic's CPU priority, set by Stow from runtimeSettings.container.nice",
	"IONICE_CLASS":      "restic's IO priority, set by Stow from runtimeSettings.container.ionice",
	"IONICE_CLASS_DATA": "restic's IO priority, set by Stow from runtimeSettings.container.ionice",
	"POD_ORDINAL":       "the restore ordinal, set by Stow",
}

// Reserved says what environment variable name controls when a user's
// runtimeSettings may not set it, else "".
func Reserved(name string) string {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.what
		}
	}
	return reservedNames[name]
}

// ReservedList names the reserved variables for messages: STOW_*, ... PATH, ...
func ReservedList() string {
	var out []string
	for _, p := range reservedPrefixes {
		out = append(out, p.prefix+"*")
	}
	return strings.Join(append(out, sortedNames()...), ", ")
}

// SafePrefix says why an envFrom prefix could produce a reserved name from
// some key of its Secret or ConfigMap ("" when it cannot). The keys are not
// known when the Job is made and may change before it starts, so only a
// prefix that no reserved name (or reserved prefix) starts with is safe.
func SafePrefix(prefix string) string {
	if prefix == "" {
		return "without a prefix every key becomes a variable of that name, and may be one that controls the runner, restic or the loader (" + ReservedList() + ")"
	}
	if why := Reserved(prefix); why != "" {
		return fmt.Sprintf("variables starting with %q control %s", prefix, why)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(p.prefix, prefix) {
			return fmt.Sprintf("a key could make it %s*, which controls %s", p.prefix, p.what)
		}
	}
	for _, n := range sortedNames() {
		if strings.HasPrefix(n, prefix) {
			return fmt.Sprintf("a key could make it %s, which controls %s", n, reservedNames[n])
		}
	}
	return ""
}

func sortedNames() []string {
	names := make([]string, 0, len(reservedNames))
	for n := range reservedNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Names lists the variables of the contract.
func Names() []string {
	return []string{Namespace, InvokerKind, InvokerName, TargetKind, TargetName, OperatorURL, LockHostPrefix, LockDeadline, Resolved, ExtraMounts, AsOf}
}

// Read returns the contract from the environment; ok is false when the
// operator set none of it (a step run by hand, or by a Function that is not
// Stow's), so callers fall back to their flags.
func Read(getenv func(string) string) (c Contract, ok bool, err error) {
	for _, n := range Names() {
		if getenv(n) != "" {
			ok = true
		}
	}
	if !ok {
		return c, false, nil
	}
	c.Identity = identity.Identity{
		Namespace: getenv(Namespace), InvokerKind: getenv(InvokerKind), InvokerName: getenv(InvokerName),
		TargetKind: getenv(TargetKind), TargetName: getenv(TargetName),
	}
	c.OperatorURL = getenv(OperatorURL)
	c.LockHostPrefix = getenv(LockHostPrefix)
	if c.LockDeadline, err = readTime(getenv, LockDeadline); err != nil {
		return c, true, err
	}
	if v := getenv(Resolved); v != "" {
		if err := json.Unmarshal([]byte(v), &c.Resolved); err != nil {
			return c, true, fmt.Errorf("%s is not a JSON list of snapshots: %v", Resolved, err)
		}
	}
	if c.AsOf, err = readTime(getenv, AsOf); err != nil {
		return c, true, err
	}
	if v := getenv(ExtraMounts); v != "" {
		for _, m := range strings.Split(v, ",") {
			if !strings.HasPrefix(m, "/") {
				return c, true, fmt.Errorf("%s: %q is not an absolute path", ExtraMounts, m)
			}
			c.ExtraMounts = append(c.ExtraMounts, m)
		}
	}
	return c, true, nil
}

// readTime reads variable name as an RFC 3339 time; unset is the zero time.
func readTime(getenv func(string) string, name string) (time.Time, error) {
	v := getenv(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q is not an RFC 3339 time", name, v)
	}
	return t, nil
}
