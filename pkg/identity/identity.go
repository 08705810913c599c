// Package identity is the source identity Stow writes into every snapshot it
// takes, as restic tags: the namespace, the invoker (BackupConfiguration) and
// the target (PVC) the snapshot belongs to. Retention, restore-by-default and
// the in-cluster view of snapshots select by it, so that in a repository shared
// by many PVCs, namespaces or clusters Stow only ever acts on what is provably
// its own (docs/reliability.md, "Shared repositories").
//
// Tag format, one restic tag per part, "<key>=<value>":
//
//	stow-ns=<namespace>
//	stow-invoker=<invoker kind>/<invoker name>
//	stow-target=<target kind>/<target name>
//
// Kubernetes names contain neither "/", "=" nor ",", so the parts cannot be
// confused (a name "a.b-c" is just a value) and a comma-joined list of tags is
// one restic --tag filter that matches snapshots carrying all of them.
package identity

import (
	"fmt"
	"strings"
)

// Tag keys.
const (
	TagNamespace = "stow-ns"
	TagInvoker   = "stow-invoker"
	TagTarget    = "stow-target"
)

// Identity is where a snapshot comes from.
type Identity struct {
	Namespace   string
	InvokerKind string
	InvokerName string
	TargetKind  string
	TargetName  string
}

// Validate reports a part that is missing or that would break the tag format.
func (id Identity) Validate() error {
	for _, p := range []struct{ name, v string }{
		{"namespace", id.Namespace}, {"invoker kind", id.InvokerKind}, {"invoker name", id.InvokerName},
		{"target kind", id.TargetKind}, {"target name", id.TargetName},
	} {
		if p.v == "" {
			return fmt.Errorf("snapshot identity: %s is empty", p.name)
		}
		if strings.ContainsAny(p.v, "/=, \t\n") {
			return fmt.Errorf("snapshot identity: %s %q contains '/', '=', ',' or a space", p.name, p.v)
		}
	}
	return nil
}

// Tags are the restic tags of a snapshot with this identity.
func (id Identity) Tags() []string {
	return []string{
		TagNamespace + "=" + id.Namespace,
		TagInvoker + "=" + id.InvokerKind + "/" + id.InvokerName,
		TagTarget + "=" + id.TargetKind + "/" + id.TargetName,
	}
}

// InvokerFilter is the restic --tag value that selects the snapshots this
// invoker took of its current target: the scope of its retention policy.
func (id Identity) InvokerFilter() string { return strings.Join(id.Tags(), ",") }

// TargetFilter is the restic --tag value that selects every snapshot Stow took
// of one target, whichever invoker took it: what a restore with no rules
// restores from.
func TargetFilter(namespace, targetKind, targetName string) string {
	return TagNamespace + "=" + namespace + "," + TagTarget + "=" + targetKind + "/" + targetName
}

// FromTags reads the identity of a snapshot from its tags; ok is false when
// the snapshot has no complete Stow identity (taken by Stash, by hand, or by
// an older Stow).
func FromTags(tags []string) (id Identity, ok bool) {
	for _, t := range tags {
		k, v, found := strings.Cut(t, "=")
		if !found {
			continue
		}
		switch k {
		case TagNamespace:
			id.Namespace = v
		case TagInvoker:
			id.InvokerKind, id.InvokerName, _ = strings.Cut(v, "/")
		case TagTarget:
			id.TargetKind, id.TargetName, _ = strings.Cut(v, "/")
		}
	}
	return id, id.Validate() == nil
}

// IsIdentityTag tells whether t is one of the tags Stow decides (identity);
// a user's extra arguments may not add or change them.
func IsIdentityTag(t string) bool {
	k, _, _ := strings.Cut(t, "=")
	return k == TagNamespace || k == TagInvoker || k == TagTarget
}
