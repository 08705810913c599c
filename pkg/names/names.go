// Package names builds the deterministic names and labels of the objects Stow
// creates, so that every controller and the in-Job runner agree on them.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

const (
	maxNameLen    = 63
	maxCronJobLen = 52 // CronJob names leave room for the Job suffix.
)

// CronJob is the trigger CronJob of a BackupConfiguration.
func CronJob(bcName string) string { return fit("stow-trigger-"+bcName, maxCronJobLen) }

// BackupJob is the Job that runs one BackupSession.
func BackupJob(sessionName string) string { return fit("stow-backup-"+sessionName, maxNameLen) }

// RestoreJob is the Job that restores one RestoreSession ordinal.
func RestoreJob(restoreName string, ordinal int) string {
	if ordinal == 0 {
		return fit("stow-restore-"+restoreName, maxNameLen)
	}
	return fit(fmt.Sprintf("stow-restore-%s-%d", restoreName, ordinal), maxNameLen)
}

// HookJob is the Job that runs one hook (v1beta1.HookPreBackup, ...) of a
// BackupSession or RestoreSession; the hook type keeps a BackupSession's
// and a RestoreSession's of the same name apart.
func HookJob(sessionName, hookType string) string {
	return fit("stow-hook-"+strings.ToLower(hookType)+"-"+sessionName, maxNameLen)
}

// MaintenanceJob is the Job of maintenance run runID of a Repository.
func MaintenanceJob(repoName, runID string) string {
	return fit("stow-maintain-"+repoName+"-"+runID, maxNameLen)
}

// InterimClaim is the name of the interim volume (PVC) of one session:
// prefix (the template's metadata.name, "stow-interim" when it has none)
// and the session's name.
func InterimClaim(prefix, sessionName string) string {
	if prefix == "" {
		prefix = "stow-interim"
	}
	return fit(prefix+"-"+sessionName, maxNameLen)
}

// WipeJob is the name of the Job that deletes a Repository's data when it
// is deleted with wipeOut (one per Repository: a retry replaces it).
func WipeJob(repoName string) string {
	return fit("stow-wipe-"+repoName, maxNameLen)
}

// SnapshotRecord is the name of the Snapshot record of a restic snapshot:
// the first 16 hex digits of its id, which restic also accepts as the id.
func SnapshotRecord(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// BackupSession is the name of a session created at unix time ts.
func BackupSession(bcName string, ts int64) string {
	suffix := fmt.Sprintf("-%d", ts)
	return fit(bcName, 253-len(suffix)) + suffix
}

// TriggerServiceAccount is the ServiceAccount (and Role, RoleBinding) of the
// trigger CronJob of one configuration, for a configuration that needs an
// identity of its own (serviceAccountAnnotations).
func TriggerServiceAccount(bcName string) string { return CronJob(bcName) }

// NamespaceTrigger is the ServiceAccount (and Role, RoleBinding) that the
// trigger CronJobs of a namespace share. No configuration's own trigger
// identity can have this name: those are "stow-trigger-<name>".
const NamespaceTrigger = "stow-trigger"

// PushgatewayJob is the Pushgateway job label (the group key) of an
// invoker: <lower(kind)>-<ns>.<name>. A namespace never contains a dot, so
// the first dot ends it: ns/x-c and ns-x/c get different groups (with "-"
// in its place they shared one, and deleting one deleted the other's).
func PushgatewayJob(kind, namespace, name string) string {
	return strings.ToLower(kind) + "-" + namespace + "." + name
}

// SessionLabels are the labels of a BackupSession and its Job.
func SessionLabels(bc *v1beta1.BackupConfiguration) map[string]string {
	l := map[string]string{
		v1beta1.LabelComponent:   v1beta1.ComponentBackup,
		v1beta1.LabelManagedBy:   v1beta1.ManagedByStow,
		v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration,
		v1beta1.LabelInvokerName: LabelValue(bc.Name),
	}
	if t := bc.Spec.Target; t != nil {
		l[v1beta1.LabelTargetKind] = v1beta1.KindPersistentVolumeClaim
		l[v1beta1.LabelTargetName] = LabelValue(t.Ref.Name)
		ns := t.Ref.Namespace
		if ns == "" {
			ns = bc.Namespace
		}
		l[v1beta1.LabelTargetNamespace] = ns
	}
	return l
}

// LabelValue makes an object name usable as a label value (at most 63
// characters); select with the same function.
func LabelValue(name string) string {
	if len(name) <= maxNameLen {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	return strings.TrimRight(name[:maxNameLen-len(suffix)], "-.") + suffix
}

// fit shortens name to n characters, keeping it unique with a hash suffix and
// a valid DNS label (dots become dashes, no trailing dash).
func fit(name string, n int) string {
	name = strings.ReplaceAll(name, ".", "-")
	if len(name) <= n {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	return strings.TrimRight(name[:n-len(suffix)], "-") + suffix
}

// LockHostPrefix starts the pod hostname of every Stow Job pod of the cluster
// with the given id (the kube-system namespace UID): restic records the
// hostname in its locks, so a lock taken by a Stow pod of this cluster is
// recognized as such, and one of another cluster sharing the bucket is not.
func LockHostPrefix(clusterID string) string {
	sum := sha256.Sum256([]byte(clusterID))
	return "stow-" + hex.EncodeToString(sum[:4]) + "-"
}

// LockHost is the pod hostname of the Job pod that runs ordinal of the
// session (or other owner) with uid: unique per Job, and the same on every
// reconcile, so the operator can tell whether the holder of a lock still runs.
func LockHost(prefix string, uid string, ordinal int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", uid, ordinal)))
	return prefix + hex.EncodeToString(sum[:8])
}
