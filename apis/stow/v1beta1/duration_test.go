package v1beta1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationDecodesAnything(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		invalid bool
	}{
		{`"90s"`, 90 * time.Second, false},
		{`"1h30m"`, 90 * time.Minute, false},
		{`"0"`, 0, false},
		{`null`, 0, false},
		{`"1 hour"`, 0, true},
		{`"soon"`, 0, true},
		{`"-5m"`, 0, true},
		{`"9999999999999999h"`, 0, true},
		{`5`, 0, true},
		{`{"a":1}`, 0, true},
	} {
		var d Duration
		if err := json.Unmarshal([]byte(tc.in), &d); err != nil {
			t.Fatalf("%s: UnmarshalJSON failed: %v", tc.in, err)
		}
		if (d.Err() != nil) != tc.invalid || d.Duration != tc.want {
			t.Errorf("%s: got %v err %v", tc.in, d.Duration, d.Err())
		}
		if tc.in == "null" {
			continue
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if tc.invalid && string(out) != tc.in {
			t.Errorf("%s: re-encoded as %s; an invalid value must be written back unchanged", tc.in, out)
		}
	}
}

// A list holding one object with a malformed duration still decodes, and
// validation names the field of that one object.
func TestMalformedDurationInvalidatesOnlyItsObject(t *testing.T) {
	doc := `{"items":[
	  {"metadata":{"name":"bad","namespace":"n"},"spec":{"schedule":"@daily","repository":{"name":"r"},"target":{"ref":{"name":"d"}},"retentionPolicy":{"name":"k","prune":true},"retryConfig":{"delay":"soon"}}},
	  {"metadata":{"name":"good","namespace":"n"},"spec":{"schedule":"@daily","repository":{"name":"r"},"target":{"ref":{"name":"d"}},"retentionPolicy":{"name":"k","prune":true},"timeOut":"2h"}}]}`
	var l BackupConfigurationList
	if err := json.Unmarshal([]byte(doc), &l); err != nil {
		t.Fatalf("the list must decode: %v", err)
	}
	errs := ValidateBackupConfiguration(&l.Items[0])
	if len(errs) != 1 || errs[0].Field != "spec.retryConfig.delay" || !strings.Contains(errs[0].Error(), `"soon" is not a duration`) {
		t.Errorf("bad: %v", errs)
	}
	if errs := ValidateBackupConfiguration(&l.Items[1]); len(errs) != 0 || l.Items[1].Spec.TimeOut.Duration != 2*time.Hour {
		t.Errorf("good: %v", errs)
	}
	rs := RestoreSession{Spec: RestoreSessionSpec{Repository: ObjectRef{Name: "r"}, Target: &RestoreTarget{Ref: TargetRef{Name: "d"}}}}
	if err := json.Unmarshal([]byte(`"1 hour"`), &rs.Spec.TimeOut); err != nil {
		t.Fatal(err)
	}
	if errs := ValidateRestoreSession(&rs); len(errs) != 1 || errs[0].Field != "spec.timeOut" {
		t.Errorf("restore: %v", errs)
	}
}

func TestRetryBounds(t *testing.T) {
	bc := &BackupConfiguration{}
	s := &BackupSession{Spec: BackupSessionSpec{RetryLeft: 1000000}}
	if got := bc.RetriesLeft(s); got != 0 {
		t.Errorf("no retryConfig: %d retries left, want 0", got)
	}
	if got := bc.RetryDelay(); got != MinRetryDelay {
		t.Errorf("no retryConfig: delay %v", got)
	}
	bc.Spec.RetryConfig = &RetryConfig{MaxRetry: 2147483647}
	if got := bc.RetriesLeft(s); got != MaxRetryLimit {
		t.Errorf("maxRetry 2147483647: %d retries left, want %d", got, MaxRetryLimit)
	}
	bc.Spec.RetryConfig = &RetryConfig{MaxRetry: 2, Delay: Duration{Duration: time.Hour}}
	if got := bc.RetriesLeft(s); got != 2 {
		t.Errorf("maxRetry 2: %d", got)
	}
	if got := bc.RetryDelay(); got != time.Hour {
		t.Errorf("delay 1h: %v", got)
	}
	s.Spec.RetryLeft = 1
	if got := bc.RetriesLeft(s); got != 1 {
		t.Errorf("retryLeft 1: %d", got)
	}
}
