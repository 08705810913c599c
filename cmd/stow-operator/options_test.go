package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) (options, error) {
	t.Helper()
	var o options
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o, o.complete()
}

// The defaults are what the control-plane benchmark measured: client-go's
// own 5 QPS and 2 workers took minutes for 1,000 BackupConfigurations.
func TestDefaultsScale(t *testing.T) {
	o, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 8 || o.KubeAPIQPS != 200 || o.KubeAPIBurst != 400 {
		t.Errorf("workers, qps, burst = %d, %g, %d; want 8, 200, 400", o.Workers, o.KubeAPIQPS, o.KubeAPIBurst)
	}
}

func TestBadValuesAreOneLineErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers=0"}, "--workers"},
		{[]string{"--kube-api-qps=0"}, "--kube-api-qps"},
		{[]string{"--kube-api-burst=0"}, "--kube-api-burst"},
		{[]string{"--pending-timeout=0s"}, "--pending-timeout"},
		// Checked at start: a typo used to fail only once the replica held
		// the Lease, after the probes said it was ready.
		{[]string{"--pod-settings=trsut"}, "--pod-settings"},
	} {
		_, err := parse(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v, want one line naming %s", tt.args, err, tt.want)
		}
	}
}
