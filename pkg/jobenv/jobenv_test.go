package jobenv

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/pkg/identity"
)

func TestEnvReadRoundTrip(t *testing.T) {
	c := Contract{
		Identity:     identity.Identity{Namespace: "apps", InvokerKind: "RestoreSession", InvokerName: "rs", TargetKind: "PersistentVolumeClaim", TargetName: "data"},
		LockDeadline: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		AsOf:         time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.UTC),
		ExtraMounts:  []string{"/source/config", "/source/logs"},
		Resolved:     []ResolvedSnapshot{{ID: strings.Repeat("a", 64), Time: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Paths: []string{"/stow-data"}}},
	}
	env := map[string]string{}
	for _, e := range c.Env() {
		env[e.Name] = e.Value
	}
	got, ok, err := Read(func(k string) string { return env[k] })
	if err != nil || !ok || !reflect.DeepEqual(got, c) {
		t.Fatalf("Read(Env(c)) = %+v, %v, %v\nwant %+v", got, ok, err, c)
	}
	for name, bad := range map[string]string{AsOf: "yesterday", LockDeadline: "soon", ExtraMounts: "relative/path"} {
		env2 := map[string]string{name: bad}
		if _, _, err := Read(func(k string) string { return env2[k] }); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, bad, err)
		}
	}
	if _, ok, _ := Read(func(string) string { return "" }); ok {
		t.Errorf("an empty environment reads as a contract")
	}
}
