package identity

import (
	"reflect"
	"testing"
)

func TestTagsRoundTrip(t *testing.T) {
	id := Identity{Namespace: "team-a", InvokerKind: "BackupConfiguration", InvokerName: "db.backup-1",
		TargetKind: "PersistentVolumeClaim", TargetName: "data.v2"}
	if err := id.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"stow-ns=team-a", "stow-invoker=BackupConfiguration/db.backup-1", "stow-target=PersistentVolumeClaim/data.v2"}
	if got := id.Tags(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Tags = %q, want %q", got, want)
	}
	back, ok := FromTags(append([]string{"stow-mount=/stow-data", "stow-backupsession=x-1"}, id.Tags()...))
	if !ok || back != id {
		t.Fatalf("FromTags = %+v, %v; want %+v", back, ok, id)
	}
	if got := id.InvokerFilter(); got != "stow-ns=team-a,stow-invoker=BackupConfiguration/db.backup-1,stow-target=PersistentVolumeClaim/data.v2" {
		t.Errorf("InvokerFilter = %q", got)
	}
	if got := TargetFilter("team-a", "PersistentVolumeClaim", "data.v2"); got != "stow-ns=team-a,stow-target=PersistentVolumeClaim/data.v2" {
		t.Errorf("TargetFilter = %q", got)
	}
}

// Names with dots and dashes stay unambiguous: two identities that differ
// only in where a separator falls never share a tag.
func TestTagsUnambiguous(t *testing.T) {
	a := Identity{Namespace: "ns", InvokerKind: "BackupConfiguration", InvokerName: "x-c", TargetKind: "PersistentVolumeClaim", TargetName: "p"}
	b := Identity{Namespace: "ns-x", InvokerKind: "BackupConfiguration", InvokerName: "c", TargetKind: "PersistentVolumeClaim", TargetName: "p"}
	for i, ta := range a.Tags()[:2] {
		if ta == b.Tags()[i] {
			t.Errorf("tag %q shared by %+v and %+v", ta, a, b)
		}
	}
}

func TestValidateAndPartialTags(t *testing.T) {
	for _, bad := range []Identity{
		{},
		{Namespace: "a,b", InvokerKind: "K", InvokerName: "n", TargetKind: "T", TargetName: "t"},
		{Namespace: "a", InvokerKind: "K", InvokerName: "n/x", TargetKind: "T", TargetName: "t"},
		{Namespace: "a", InvokerKind: "K", InvokerName: "n", TargetKind: "T", TargetName: "t=1"},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
	if _, ok := FromTags([]string{"stow-mount=/stow-data", "stow-ns=a"}); ok {
		t.Error("a partial identity was accepted")
	}
	if _, ok := FromTags(nil); ok {
		t.Error("no tags made an identity")
	}
	if !IsIdentityTag("stow-ns=x") || !IsIdentityTag("stow-target") || IsIdentityTag("stow-mount=/x") || IsIdentityTag("mine") {
		t.Error("IsIdentityTag misclassifies")
	}
}
