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

// Every variable of the contract is set, empty when unused, so that no
// envFrom source can supply it.
func TestEnvSetsEveryName(t *testing.T) {
	got := map[string]bool{}
	for _, e := range (Contract{}).Env() {
		got[e.Name] = true
	}
	for _, n := range Names() {
		if !got[n] {
			t.Errorf("%s is not set by an empty contract: an envFrom source could supply it", n)
		}
		if Reserved(n) == "" {
			t.Errorf("%s is not reserved", n)
		}
	}
}

func TestReservedAndSafePrefix(t *testing.T) {
	for _, n := range []string{"STOW_RESTIC", "STOW_NAMESPACE", "RESTIC_PASSWORD_COMMAND", "LD_PRELOAD", "PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "CA_CERT_DATA", "POD_ORDINAL", "NICE_ADJUSTMENT"} {
		if Reserved(n) == "" {
			t.Errorf("%s is not reserved", n)
		}
	}
	for _, n := range []string{"HTTPS_PROXY", "AWS_REGION", "TZ", "APP_PATH", "PATHS", "MY_STOW_X"} {
		if why := Reserved(n); why != "" {
			t.Errorf("%s is reserved: %s", n, why)
		}
	}
	for prefix, want := range map[string]string{
		"": "without a prefix", "RESTIC_": "control restic's own settings", "RE": "RESTIC_*", "S": "STOW_*",
		"PA": "PATH", "P": "PATH", "L": "LD_*", "CA_": "CA_CERT_DATA", "STOW_X_": "control Stow's runner",
	} {
		if got := SafePrefix(prefix); !strings.Contains(got, want) {
			t.Errorf("SafePrefix(%q) = %q, want it to say %q", prefix, got, want)
		}
	}
	for _, prefix := range []string{"APP_", "X", "CONFIG_", "PATHS_", "HOMEDIR_"} {
		if got := SafePrefix(prefix); got != "" {
			t.Errorf("SafePrefix(%q) = %q, want safe", prefix, got)
		}
	}
}
