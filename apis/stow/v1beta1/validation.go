package v1beta1

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation is pure: the operator runs it on every reconcile and reports the
// result as ValidationPassed=False with the aggregated message, and the CRD
// schema enforces the subset Kubernetes can check at admission.

// ValidateRepository checks a Repository spec.
func ValidateRepository(r *Repository) field.ErrorList {
	if errs := decodeErrors(r); len(errs) > 0 {
		return errs
	}
	var errs field.ErrorList
	p := field.NewPath("spec", "backend")
	b := r.Spec.Backend
	if b.StorageSecretName == "" {
		errs = append(errs, field.Required(p.Child("storageSecretName"), "the Secret with RESTIC_PASSWORD and the backend credentials"))
	}
	set := backendsSet(b)
	switch len(set) {
	case 0:
		errs = append(errs, field.Required(p, "one backend: local, s3, gcs, azure, swift, b2 or rest"))
	case 1:
	default:
		errs = append(errs, field.Invalid(p, strings.Join(set, ","), "exactly one backend may be set"))
	}
	if b.Local != nil {
		mp := b.Local.MountPath
		switch {
		case !path.IsAbs(mp):
			errs = append(errs, field.Invalid(p.Child("local", "mountPath"), mp, "must be an absolute path"))
		case path.Clean(mp) == "/stow" || strings.HasPrefix(path.Clean(mp), "/stow/") || path.Clean(mp) == "/":
			errs = append(errs, field.Invalid(p.Child("local", "mountPath"), mp, "must not be / or under /stow (used by Stow itself)"))
		case ReservedMountPath(mp) != "":
			errs = append(errs, field.Invalid(p.Child("local", "mountPath"), mp, reservedMessage(ReservedMountPath(mp))))
		}
		errs = append(errs, validateLocalSource(b.Local.VolumeSource, p.Child("local"))...)
		if hasDotDot(b.Local.SubPath) {
			errs = append(errs, field.Invalid(p.Child("local", "subPath"), b.Local.SubPath, "must not contain '..'"))
		}
	}
	if b.S3 != nil {
		if b.S3.Endpoint == "" {
			errs = append(errs, field.Required(p.Child("s3", "endpoint"), ""))
		}
		if b.S3.Bucket == "" {
			errs = append(errs, field.Required(p.Child("s3", "bucket"), ""))
		}
	}
	if b.GCS != nil && b.GCS.Bucket == "" {
		errs = append(errs, field.Required(p.Child("gcs", "bucket"), ""))
	}
	if b.Azure != nil && b.Azure.Container == "" {
		errs = append(errs, field.Required(p.Child("azure", "container"), ""))
	}
	if b.Swift != nil && b.Swift.Container == "" {
		errs = append(errs, field.Required(p.Child("swift", "container"), ""))
	}
	if b.B2 != nil && b.B2.Bucket == "" {
		errs = append(errs, field.Required(p.Child("b2", "bucket"), ""))
	}
	if b.Rest != nil && b.Rest.URL == "" {
		errs = append(errs, field.Required(p.Child("rest", "url"), ""))
	}
	if r.Spec.WipeOut && (b.Local != nil || b.B2 != nil) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "wipeOut"), "not supported for local and b2 backends"))
	}
	if up := r.Spec.UsagePolicy; up != nil && up.AllowedNamespaces.From == NamespacesFromSelector && up.AllowedNamespaces.Selector == nil {
		errs = append(errs, field.Required(field.NewPath("spec", "usagePolicy", "allowedNamespaces", "selector"), "from: Selector needs a selector"))
	}
	return errs
}

// Provider returns the name of the configured backend, or "" if none.
func (b Backend) Provider() string {
	if s := backendsSet(b); len(s) == 1 {
		return s[0]
	}
	return ""
}

func backendsSet(b Backend) []string {
	var s []string
	for name, ok := range map[string]bool{
		ProviderLocal: b.Local != nil, ProviderS3: b.S3 != nil, ProviderGCS: b.GCS != nil,
		ProviderAzure: b.Azure != nil, ProviderSwift: b.Swift != nil, ProviderB2: b.B2 != nil, ProviderRest: b.Rest != nil,
	} {
		if ok {
			s = append(s, name)
		}
	}
	sort.Strings(s)
	return s
}

// ValidateBackupConfiguration checks a BackupConfiguration spec.
func ValidateBackupConfiguration(bc *BackupConfiguration) field.ErrorList {
	if DecodeError(bc) != "" {
		return decodeErrors(bc)
	}
	spec := field.NewPath("spec")
	s := bc.Spec
	durations := []durationField{{spec.Child("timeOut"), s.TimeOut}}
	if s.RetryConfig != nil {
		durations = append(durations, durationField{spec.Child("retryConfig", "delay"), &s.RetryConfig.Delay})
	}
	errs := decodeErrors(bc, durations...)
	errs = append(errs, validateSchedule(bc.Namespace, bc.Name, s.Schedule, s.TimeZone, spec)...)
	if s.Hooks != nil {
		errs = append(errs, validateHooks(spec.Child("hooks"), s.Hooks.PreBackup, s.Hooks.PostBackup, "preBackup", "postBackup")...)
	}
	errs = append(errs, tooMany(spec.Child("task", "params"), len(s.Task.Params), MaxParams)...)
	if s.Driver != "" && s.Driver != ResticDriver {
		errs = append(errs, field.NotSupported(spec.Child("driver"), s.Driver, []string{string(ResticDriver)}))
	}
	if s.Repository.Name == "" {
		errs = append(errs, field.Required(spec.Child("repository", "name"), ""))
	}
	if s.Target == nil {
		errs = append(errs, field.Required(spec.Child("target"), "the PVC to back up"))
	} else {
		tp := spec.Child("target")
		errs = append(errs, validateTargetRef(s.Target.Ref, bc.Namespace, true, tp.Child("ref"))...)
		errs = append(errs, validateMounts(s.Target.VolumeMounts, tp.Child("volumeMounts"))...)
		mount := path.Clean(TargetMountPath(s.Target.VolumeMounts))
		for i, p := range s.Target.Paths {
			switch {
			case !path.IsAbs(p) || hasDotDot(p):
				errs = append(errs, field.Invalid(tp.Child("paths").Index(i), p, "must be an absolute path without '..'"))
			case strings.Contains(p, ","):
				// The Job receives the paths comma-joined: one value must
				// not hide two paths.
				errs = append(errs, field.Invalid(tp.Child("paths").Index(i), p, "must not contain a comma (list each path as its own item)"))
			case !within(path.Clean(p), mount):
				errs = append(errs, field.Invalid(tp.Child("paths").Index(i), p, "must be inside the target volume, mounted at "+mount+": only the target volume is backed up"))
			}
		}
		for i, e := range s.Target.Exclude {
			if strings.Contains(e, ",") {
				errs = append(errs, field.Invalid(tp.Child("exclude").Index(i), e, "must not contain a comma"))
			}
		}
	}
	if s.RetentionPolicy.Name == "" {
		errs = append(errs, field.Required(spec.Child("retentionPolicy", "name"), ""))
	}
	if s.BackupHistoryLimit != nil && *s.BackupHistoryLimit < 0 {
		errs = append(errs, field.Invalid(spec.Child("backupHistoryLimit"), *s.BackupHistoryLimit, "must be >= 0"))
	}
	if s.TimeOut != nil && s.TimeOut.Err() == nil && s.TimeOut.Duration <= 0 {
		errs = append(errs, field.Invalid(spec.Child("timeOut"), s.TimeOut.Duration.String(), "must be positive"))
	}
	if rc := s.RetryConfig; rc != nil {
		if rc.MaxRetry < 0 || rc.MaxRetry > MaxRetryLimit {
			errs = append(errs, field.Invalid(spec.Child("retryConfig", "maxRetry"), rc.MaxRetry, fmt.Sprintf("must be between 0 and %d", MaxRetryLimit)))
		}
	}
	return errs
}

func validateSchedule(ns, name, schedule string, tz *string, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	if strings.TrimSpace(schedule) == "" {
		return append(errs, field.Required(spec.Child("schedule"), "a cron expression such as \"0 2 * * *\" or @daily-random"))
	}
	if _, err := ParseSchedule(ResolveSchedule(ns, name, schedule)); err != nil {
		errs = append(errs, field.Invalid(spec.Child("schedule"), schedule, err.Error()))
	}
	if tz != nil && *tz != "" {
		if _, err := time.LoadLocation(*tz); err != nil || strings.EqualFold(*tz, "local") {
			errs = append(errs, field.Invalid(spec.Child("timeZone"), *tz, "unknown time zone"))
		}
	}
	return errs
}

func validateTargetRef(r TargetRef, ns string, nameRequired bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Kind != "" && r.Kind != KindPersistentVolumeClaim {
		errs = append(errs, field.NotSupported(p.Child("kind"), r.Kind, []string{KindPersistentVolumeClaim}))
	}
	if r.APIVersion != "" && r.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), r.APIVersion, []string{"v1"}))
	}
	if nameRequired && r.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "the PVC name"))
	}
	if r.Namespace != "" && r.Namespace != ns {
		errs = append(errs, field.Forbidden(p.Child("namespace"), fmt.Sprintf("the target must be in the same namespace (%s), not %s", ns, r.Namespace)))
	}
	return errs
}

// validateMounts checks the target's volumeMounts: the first is where the
// target is mounted, the others where a restore mounts the PVCs of its
// volumeClaimTemplates (the resolver's claimMounts).
func validateMounts(mounts []corev1.VolumeMount, p *field.Path) field.ErrorList {
	errs := tooMany(p, len(mounts), MaxVolumeMounts)
	for i, m := range mounts {
		mp := m.MountPath
		switch {
		case !path.IsAbs(mp) || hasDotDot(mp) || path.Clean(mp) == "/":
			errs = append(errs, field.Invalid(p.Index(i).Child("mountPath"), mp, "must be an absolute path, not /, without '..'"))
		case ReservedMountPath(mp) != "":
			errs = append(errs, field.Invalid(p.Index(i).Child("mountPath"), mp, reservedMessage(ReservedMountPath(mp))))
		}
	}
	return errs
}

// reservedMounts are the paths Stow mounts its own volumes at in every
// container of a Job pod, with what it mounts there. Secrets reach the
// containers as environment variables and hooks run in other pods, so they
// mount nothing; the local repository's mountPath is the Repository's
// choice, checked against the target by ValidateMountsApart.
var reservedMounts = []struct{ path, what string }{
	{TmpDirMountPath, "its scratch volume (restic's cache, the step results)"},
	{InterimMountPath, "the interim volume of interimVolumeTemplate"},
}

// ReservedMountPath returns the path Stow mounts its own volume at that mp
// is, or lies under, or "" when mp is free. A volume mounted there would
// replace Stow's, or be hidden by it: a backup would read, or a restore
// write, the wrong volume, and succeed.
func ReservedMountPath(mp string) string {
	c := path.Clean(mp)
	for _, r := range reservedMounts {
		if within(c, r.path) {
			return r.path
		}
	}
	return ""
}

func reservedMessage(reserved string) string {
	for _, r := range reservedMounts {
		if r.path == reserved {
			return fmt.Sprintf("must not be %s or under it: Stow mounts %s there", r.path, r.what)
		}
	}
	return "must not be " + reserved + " or under it"
}

// refAndTemplates is why a RestoreSession may not name both target.ref and
// target.volumeClaimTemplates.
const refAndTemplates = "must not be set together with spec.target.ref.name: restore either into the existing PVC that ref names, or into new PVCs made from volumeClaimTemplates"

// ValidateRestoreSession checks a RestoreSession spec (after DefaultRestoreSession).
func ValidateRestoreSession(rs *RestoreSession) field.ErrorList {
	if DecodeError(rs) != "" {
		return decodeErrors(rs)
	}
	spec := field.NewPath("spec")
	s := rs.Spec
	errs := decodeErrors(rs, durationField{spec.Child("timeOut"), s.TimeOut})
	if s.Hooks != nil {
		errs = append(errs, validateHooks(spec.Child("hooks"), s.Hooks.PreRestore, s.Hooks.PostRestore, "preRestore", "postRestore")...)
	}
	if s.Driver != "" && s.Driver != ResticDriver {
		errs = append(errs, field.NotSupported(spec.Child("driver"), s.Driver, []string{string(ResticDriver)}))
	}
	if s.Repository.Name == "" {
		errs = append(errs, field.Required(spec.Child("repository", "name"), ""))
	}
	if s.Target == nil {
		return append(errs, field.Required(spec.Child("target"), "the PVC to restore into"))
	}
	tp := spec.Child("target")
	errs = append(errs, validateTargetRef(s.Target.Ref, rs.Namespace, len(s.Target.VolumeClaimTemplates) == 0, tp.Child("ref"))...)
	errs = append(errs, tooMany(spec.Child("task", "params"), len(s.Task.Params), MaxParams)...)
	errs = append(errs, tooMany(tp.Child("volumeClaimTemplates"), len(s.Target.VolumeClaimTemplates), MaxVolumeClaimTemplates)...)
	errs = append(errs, ValidateRestoreFanOut(&s, 0, tp.Child("replicas"))...)
	if s.Target.Ref.Name != "" && len(s.Target.VolumeClaimTemplates) > 0 {
		// The Job would restore into the PVC of ref (TARGET_NAME) and the
		// first template's new PVC would be made and mounted nowhere: a
		// restore that succeeds having overwritten the PVC not asked for.
		errs = append(errs, field.Forbidden(tp.Child("volumeClaimTemplates"), refAndTemplates))
	}
	errs = append(errs, validateMounts(s.Target.VolumeMounts, tp.Child("volumeMounts"))...)
	seenHosts := map[string]bool{}
	emptyHostRules := 0
	for i, r := range s.Target.Rules {
		rp := tp.Child("rules").Index(i)
		if len(r.TargetHosts) == 0 {
			emptyHostRules++
		}
		for _, h := range r.TargetHosts {
			if seenHosts[h] {
				errs = append(errs, field.Duplicate(rp.Child("targetHosts"), h))
			}
			seenHosts[h] = true
		}
		if len(r.Snapshots) > 0 && len(r.Paths) > 0 {
			errs = append(errs, field.Forbidden(rp, "a rule may set snapshots or paths, not both"))
		}
		for j, p := range r.Paths {
			if !path.IsAbs(p) || hasDotDot(p) || strings.Contains(p, ",") {
				errs = append(errs, field.Invalid(rp.Child("paths").Index(j), p, "must be an absolute path without '..' or a comma"))
			}
		}
		for j, p := range r.Include {
			if hasDotDot(p) {
				errs = append(errs, field.Invalid(rp.Child("include").Index(j), p, "must not contain '..'"))
			}
		}
		for j, id := range r.Snapshots {
			if !validSnapshotID(id) {
				errs = append(errs, field.Invalid(rp.Child("snapshots").Index(j), id, "must be \"latest\" or a hexadecimal snapshot id"))
			} else if s.RestoreAsOf != nil && id != "latest" {
				errs = append(errs, field.Forbidden(rp.Child("snapshots").Index(j), "spec.restoreAsOf chooses the snapshot; name \"latest\" or leave restoreAsOf out"))
			}
		}
	}
	if emptyHostRules > 1 {
		errs = append(errs, field.Forbidden(tp.Child("rules"), "at most one rule may have empty targetHosts"))
	}
	if s.TimeOut != nil && s.TimeOut.Err() == nil && s.TimeOut.Duration <= 0 {
		errs = append(errs, field.Invalid(spec.Child("timeOut"), s.TimeOut.Duration.String(), "must be positive"))
	}
	return errs
}

// tooMany refuses a list longer than max: the schema bounds it, an object
// stored under an older schema may not be.
func tooMany(p *field.Path, n, max int) field.ErrorList {
	if n > max {
		return field.ErrorList{field.TooMany(p, n, max)}
	}
	return nil
}

// ValidateRestoreFanOut bounds what one sync of a RestoreSession builds: a
// Job and the PVCs of every replica, each a copy of what spec (and, for
// the resolver, extraBytes of Task and Functions) holds. Replicas beyond
// MaxRestoreReplicas, or replicas times that size beyond
// MaxRestoreFanOutBytes, are refused at p (spec.target.replicas): the
// operator would build them all in memory on every sync.
func ValidateRestoreFanOut(s *RestoreSessionSpec, extraBytes int, p *field.Path) field.ErrorList {
	if s.Target == nil || s.Target.Replicas == nil {
		return nil
	}
	r := *s.Target.Replicas
	switch {
	case r < 1 || r > MaxRestoreReplicas:
		return field.ErrorList{field.Invalid(p, r, fmt.Sprintf("must be between 1 and %d: the operator builds every replica's Job and PVCs on each sync", MaxRestoreReplicas))}
	case r == 1 || len(s.Target.VolumeClaimTemplates) == 0:
		return nil // one Job (replicas only count with volumeClaimTemplates)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return field.ErrorList{field.InternalError(p, err)}
	}
	size := len(raw) + extraBytes
	if int64(r)*int64(size) <= MaxRestoreFanOutBytes {
		return nil
	}
	what := "a spec"
	if extraBytes > 0 {
		what = "a spec, Task and Functions"
	}
	return field.ErrorList{field.Invalid(p, r, fmt.Sprintf("too many for %s of %d KiB: the operator builds every replica's Job and PVCs, each a copy of it, on each sync, and replicas × that size must stay within %d MiB (here at most %d replicas)",
		what, (size+1023)/1024, MaxRestoreFanOutBytes>>20, MaxRestoreFanOutBytes/size))}
}

// ValidateUsage checks that a Repository may be used from invokerNS, whose
// labels are nsLabels (needed only for from: Selector).
func ValidateUsage(r *Repository, invokerNS string, nsLabels map[string]string) error {
	if r.Namespace == invokerNS {
		return nil
	}
	from := NamespacesFromSame
	var sel *metav1.LabelSelector
	if r.Spec.UsagePolicy != nil {
		if r.Spec.UsagePolicy.AllowedNamespaces.From != "" {
			from = r.Spec.UsagePolicy.AllowedNamespaces.From
		}
		sel = r.Spec.UsagePolicy.AllowedNamespaces.Selector
	}
	switch from {
	case NamespacesFromAll:
		return nil
	case NamespacesFromSelector:
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return fmt.Errorf("repository %s/%s has an invalid usagePolicy selector: %v", r.Namespace, r.Name, err)
		}
		if s.Matches(labels.Set(nsLabels)) {
			return nil
		}
	}
	return fmt.Errorf("repository %s/%s does not allow use from namespace %q (usagePolicy.allowedNamespaces.from=%s)", r.Namespace, r.Name, invokerNS, from)
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

func validSnapshotID(id string) bool {
	if id == "latest" {
		return true
	}
	if len(id) < 4 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Selects tells whether namespace ns (with its labels) is selected; a nil
// selection selects every namespace.
func (s *NamespaceSelection) Selects(ns string, nsLabels map[string]string) (bool, error) {
	if s == nil {
		return true, nil
	}
	for _, n := range s.Names {
		if n == ns {
			return true, nil
		}
	}
	if s.Selector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Selector)
	if err != nil {
		return false, fmt.Errorf("invalid namespace selector: %v", err)
	}
	return sel.Matches(labels.Set(nsLabels)), nil
}

// within tells whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// ValidateMountsApart refuses a target mounted where a local repository is
// mounted, or one inside the other: the backup would read the repository
// (a "Succeeded" backup of the wrong data), a restore would write into it.
func ValidateMountsApart(targetMount string, repo *Repository, p *field.Path) field.ErrorList {
	if repo == nil || repo.Spec.Backend.Local == nil {
		return nil
	}
	t, r := path.Clean(targetMount), path.Clean(repo.Spec.Backend.Local.MountPath)
	if within(t, r) || within(r, t) {
		return field.ErrorList{field.Invalid(p, targetMount, fmt.Sprintf("overlaps the mountPath %s of the local Repository %s/%s: mount the target and the repository apart", r, repo.Namespace, repo.Name))}
	}
	return nil
}

// validateLocalSource refuses a local backend's volume that cannot keep a
// repository: the Job's pod declares it, so a pod-scoped volume (emptyDir,
// ephemeral, or one projected from the API) is a new, empty repository in
// every Job, lost when the Job ends, while its sessions end Succeeded. A
// volume without a source is one too: the API server makes it an emptyDir.
// Stash's local backend guide has an emptyDir example; in Stash's sidecar
// it lived as long as the workload's pod.
func validateLocalSource(v corev1.VolumeSource, p *field.Path) field.ErrorList {
	const why = "lives only as long as one Job's pod and cannot hold a repository: every backup would write a new one, lost when its Job ends; use a persistentVolumeClaim, nfs or hostPath"
	for _, s := range []struct {
		name string
		set  bool
	}{{"emptyDir", v.EmptyDir != nil}, {"ephemeral", v.Ephemeral != nil}, {"configMap", v.ConfigMap != nil},
		{"secret", v.Secret != nil}, {"downwardAPI", v.DownwardAPI != nil}, {"projected", v.Projected != nil}} {
		if s.set {
			return field.ErrorList{field.Forbidden(p.Child(s.name), "the volume "+why)}
		}
	}
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return nil
		}
	}
	return field.ErrorList{field.Required(p, "a volume source (persistentVolumeClaim, nfs, hostPath, ...): without one the volume is an emptyDir, which "+why)}
}
