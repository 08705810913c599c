package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// listPage bounds one List of Snapshot records: a namespace may hold
// thousands, read in pages rather than in one response.
const listPage = 500

var snapshotsCommand = command{
	name:  "snapshots",
	args:  "[BACKUPCONFIGURATION]",
	short: "list the snapshots the operator recorded (Snapshot objects), newest first",
	flags: func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
		pvc := fs.String("pvc", "", "only snapshots of this PVC")
		limit := fs.Int("limit", 0, "show at most this many (0: all)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 1 {
				return usagef("want at most one BackupConfiguration name, got %d arguments", len(args))
			}
			if *limit < 0 {
				return usagef("--limit must be 0 (all) or more, not %d", *limit)
			}
			set := labels.Set{}
			if len(args) == 1 {
				set[v1beta1.LabelInvokerType] = v1beta1.KindBackupConfiguration
				set[v1beta1.LabelInvokerName] = names.LabelValue(args[0])
			}
			if *pvc != "" {
				set[v1beta1.LabelTargetName] = names.LabelValue(*pvc)
			}
			snaps, err := listSnapshots(ctx, e, set.AsSelector().String())
			if err != nil {
				return err
			}
			// The labels hold hashed long names: filter on the spec too.
			kept := snaps[:0]
			for _, s := range snaps {
				if (len(args) == 0 || s.Spec.Invoker.Name == args[0]) && (*pvc == "" || s.Spec.Target.Name == *pvc) {
					kept = append(kept, s)
				}
			}
			snaps = kept
			sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Spec.Time.After(snaps[j].Spec.Time.Time) })
			if *limit > 0 && len(snaps) > *limit {
				snaps = snaps[:*limit]
			}
			if len(snaps) == 0 {
				fmt.Fprintf(e.out, "No snapshots recorded in namespace %s.\n", e.namespace)
				return nil
			}
			tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTIME\tCONFIGURATION\tPVC\tHOST\tSIZE\tREPOSITORY\tPATHS")
			for _, s := range snaps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Spec.Time.UTC().Format(time.RFC3339), s.Spec.Invoker.Name,
					s.Spec.Target.Name, s.Spec.Hostname, dash(s.Spec.TotalSize), s.Spec.Repository.Name, strings.Join(s.Spec.Paths, ","))
			}
			return tw.Flush()
		}
	},
}

func listSnapshots(ctx context.Context, e *env, selector string) ([]v1beta1.Snapshot, error) {
	var all []v1beta1.Snapshot
	opts := metav1.ListOptions{LabelSelector: selector, Limit: listPage}
	for {
		list, err := e.stow.StowV1beta1().Snapshots(e.namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list snapshots in %s: %v", e.namespace, err)
		}
		all = append(all, list.Items...)
		if list.Continue == "" {
			return all, nil
		}
		opts.Continue = list.Continue
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var restoreCommand = command{
	name:  "restore",
	args:  "SNAPSHOT",
	short: "restore a recorded snapshot (a name from `kubectl stow snapshots`) into its PVC or a new one",
	flags: func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
		toPVC := fs.String("to-pvc", "", "restore into this PVC instead of the snapshot's own; created (--size, --storage-class) when it does not exist")
		size := fs.String("size", "", "size of a new --to-pvc (default: the request of the snapshot's PVC)")
		storageClass := fs.String("storage-class", "", "storage class of a new --to-pvc (default: the cluster's default)")
		name := fs.String("name", "", "name of the RestoreSession (default: <snapshot>-restore-<unix time>)")
		wait := fs.Bool("wait", false, "wait for the restore to end; exit 1 unless it Succeeded")
		timeout := fs.Duration("timeout", 30*time.Minute, "how long --wait waits")
		return func(ctx context.Context, e *env, args []string) error {
			snapName, err := oneArg(args, "Snapshot name")
			if err != nil {
				return err
			}
			if err := positive("--timeout", *timeout); err != nil {
				return err
			}
			snap, err := e.stow.StowV1beta1().Snapshots(e.namespace).Get(ctx, snapName, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("snapshot %s: %v", snapName, err)
			}
			rs, err := restoreSessionFor(ctx, e, snap, restoreOptions{toPVC: *toPVC, size: *size, storageClass: *storageClass, name: *name})
			if err != nil {
				return err
			}
			created, err := e.stow.StowV1beta1().RestoreSessions(e.namespace).Create(ctx, rs, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("create RestoreSession: %v", err)
			}
			target := rs.Spec.Target.Ref.Name
			if target == "" {
				target = rs.Spec.Target.VolumeClaimTemplates[0].Name + " (new)"
			}
			fmt.Fprintf(e.out, "restoresession/%s created: snapshot %s into PVC %s\n", created.Name, snap.Spec.ID[:min(8, len(snap.Spec.ID))], target)
			if !*wait {
				return nil
			}
			return waitRestoreSession(ctx, e, created.Name, *timeout)
		}
	},
}

type restoreOptions struct {
	toPVC, size, storageClass, name string
}

// restoreSessionFor builds the RestoreSession that restores snap: its
// Repository, its snapshot id (rules[].snapshots) and its mount path, into
// its own PVC or o.toPVC.
func restoreSessionFor(ctx context.Context, e *env, snap *v1beta1.Snapshot, o restoreOptions) (*v1beta1.RestoreSession, error) {
	name := o.name
	if name == "" {
		name = fmt.Sprintf("%s-restore-%d", snap.Name, e.now().Unix())
	}
	target := &v1beta1.RestoreTarget{
		Rules: []v1beta1.Rule{{Snapshots: []string{snap.Spec.ID}}},
	}
	if mp := snap.Spec.MountPath; mp != "" && mp != v1beta1.DefaultMountPath {
		// restic restores the snapshot's paths as they were: under the
		// mount path of the backup.
		target.VolumeMounts = []corev1.VolumeMount{{Name: v1beta1.TargetVolumeName, MountPath: mp}}
	}
	pvcName := snap.Spec.Target.Name
	if o.toPVC != "" {
		pvcName = o.toPVC
	}
	if o.toPVC == "" && (o.size != "" || o.storageClass != "") {
		return nil, usagef("--size and --storage-class only apply with --to-pvc")
	}
	_, err := e.kube.CoreV1().PersistentVolumeClaims(e.namespace).Get(ctx, pvcName, metav1.GetOptions{})
	switch {
	case err == nil:
		target.Ref = v1beta1.TargetRef{APIVersion: "v1", Kind: v1beta1.KindPersistentVolumeClaim, Name: pvcName}
		if o.size != "" || o.storageClass != "" {
			return nil, usagef("PVC %s exists: --size and --storage-class are for a new one", pvcName)
		}
	case apierrors.IsNotFound(err) && o.toPVC == "":
		return nil, fmt.Errorf("PVC %s of the snapshot does not exist; restore into a new one with --to-pvc NAME", pvcName)
	case apierrors.IsNotFound(err):
		claim, err := newClaim(ctx, e, snap, o)
		if err != nil {
			return nil, err
		}
		target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claim}
	default:
		return nil, fmt.Errorf("PVC %s: %v", pvcName, err)
	}
	return &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.namespace},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: snap.Spec.Repository,
			Target:     target,
		},
	}, nil
}

// newClaim is the template of a new PVC o.toPVC, sized like the snapshot's
// PVC unless --size says otherwise.
func newClaim(ctx context.Context, e *env, snap *v1beta1.Snapshot, o restoreOptions) (corev1.PersistentVolumeClaim, error) {
	size := o.size
	if size == "" {
		src, err := e.kube.CoreV1().PersistentVolumeClaims(e.namespace).Get(ctx, snap.Spec.Target.Name, metav1.GetOptions{})
		if err != nil {
			return corev1.PersistentVolumeClaim{}, usagef("PVC %s does not exist and the snapshot's PVC %s cannot be read (%v): give --size", o.toPVC, snap.Spec.Target.Name, err)
		}
		q := src.Spec.Resources.Requests[corev1.ResourceStorage]
		size = q.String()
	}
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return corev1.PersistentVolumeClaim{}, usagef("--size %q: %v", size, err)
	}
	claim := corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: o.toPVC},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
	}
	if o.storageClass != "" {
		claim.Spec.StorageClassName = &o.storageClass
	}
	return claim, nil
}

// waitRestoreSession waits until restore name ends and reports how.
func waitRestoreSession(ctx context.Context, e *env, name string, timeout time.Duration) error {
	return waitSession(ctx, e, "restoresession", name, timeout,
		func(ctx context.Context) (*v1beta1.RestoreSession, error) {
			return e.stow.StowV1beta1().RestoreSessions(e.namespace).Get(ctx, name, metav1.GetOptions{})
		},
		func(rs *v1beta1.RestoreSession) sessionEnd {
			switch p := rs.Status.Phase; p {
			case v1beta1.RestoreSucceeded, v1beta1.RestoreFailed, v1beta1.RestoreInvalid:
				return sessionEnd{phase: string(p), ended: true, succeeded: p == v1beta1.RestoreSucceeded, reason: rs.Status.Reason, duration: rs.Status.SessionDuration}
			default:
				return sessionEnd{phase: string(p)}
			}
		})
}
