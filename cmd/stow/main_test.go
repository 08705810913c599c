package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/restic"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

var variable = regexp.MustCompile(`\$\{([A-Za-z_]+)(:=([^}]*))?\}`)

// The built-in Functions are the contract: every flag they pass must exist
// on the subcommand, with a value of the right type.
func TestBuiltinFunctionArgsParse(t *testing.T) {
	values := map[string]string{"TARGET_PATHS": "/stow-data", "TARGET_MOUNT_PATH": "/stow-data", "TARGET_NAME": "pvc"}
	for _, fn := range builtin.Functions("img") {
		t.Run(fn.Name, func(t *testing.T) {
			args := fn.Spec.Args
			var cmd *command
			for i := range commands {
				if commands[i].name == args[0] {
					cmd = &commands[i]
				}
			}
			if cmd == nil {
				t.Fatalf("no stow subcommand %q", args[0])
			}
			var resolved []string
			for _, a := range args[1:] {
				resolved = append(resolved, variable.ReplaceAllStringFunc(a, func(m string) string {
					sub := variable.FindStringSubmatch(m)
					if v, ok := values[sub[1]]; ok {
						return v
					}
					return sub[3]
				}))
			}
			fs := pflag.NewFlagSet(cmd.name, pflag.ContinueOnError)
			var out bytes.Buffer
			fs.SetOutput(&out)
			cmd.flags(fs)
			if err := fs.Parse(resolved); err != nil {
				t.Fatalf("%s %q: %v %s", cmd.name, resolved, err, out.String())
			}
			if fs.NArg() != 0 {
				t.Errorf("positional arguments left: %q", fs.Args())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"--help"}, 0, "create-backupsession"},
		{nil, 2, "User commands"},
		{[]string{"restore-pvc", "--help"}, 0, "--source-hostname"},
		{[]string{"help", "backup"}, 0, "--password-file"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"backup-pvc", "--no-such-flag"}, 2, "unknown flag"},
		{[]string{"backup"}, 2, "no directory"},
		{[]string{"create-backupsession"}, 2, "--namespace and --invoker-name are required"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.contains) {
			t.Errorf("stow %q: exit %d, want %d; output lacks %q:\n%s%s", tt.args, code, tt.code, tt.contains, stdout.String(), stderr.String())
		}
	}
}

func TestCreateBackupSession(t *testing.T) {
	bc := &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "apps", UID: types.UID("uid-1")},
		Spec: v1beta1.BackupConfigurationSpec{
			Target:      &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: "data"}},
			RetryConfig: &v1beta1.RetryConfig{MaxRetry: 3},
		},
	}
	cs := fake.NewSimpleClientset(bc)
	now := time.Unix(1700000000, 0)
	bs, err := createBackupSession(context.Background(), cs, "apps", "nightly", now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cs.StowV1beta1().BackupSessions("apps").Get(context.Background(), names.BackupSession("nightly", now.Unix()), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bs.Name != "nightly-1700000000" || got.Name != bs.Name {
		t.Errorf("name = %q", got.Name)
	}
	for k, v := range names.SessionLabels(bc) {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if len(got.OwnerReferences) != 1 {
		t.Fatalf("owner references: %+v", got.OwnerReferences)
	}
	o := got.OwnerReferences[0]
	if o.Kind != v1beta1.KindBackupConfiguration || o.Name != "nightly" || o.UID != "uid-1" || o.Controller == nil || !*o.Controller ||
		o.APIVersion != v1beta1.SchemeGroupVersion.String() {
		t.Errorf("owner = %+v", o)
	}
	if got.Spec.Invoker.Name != "nightly" || got.Spec.Invoker.Kind != v1beta1.KindBackupConfiguration || got.Spec.RetryLeft != 3 {
		t.Errorf("spec = %+v", got.Spec)
	}

	// A second trigger in the same second is an error, not a silent no-op.
	if _, err := createBackupSession(context.Background(), cs, "apps", "nightly", now); err == nil {
		t.Error("duplicate session created")
	}
	if _, err := createBackupSession(context.Background(), cs, "apps", "missing", now); err == nil || !strings.Contains(err.Error(), "apps/missing") {
		t.Errorf("missing BC: %v", err)
	}
	// No retryConfig: retryLeft 0.
	bc2 := bc.DeepCopy()
	bc2.Name, bc2.Spec.RetryConfig = "plain", nil
	cs2 := fake.NewSimpleClientset(bc2)
	bs2, err := createBackupSession(context.Background(), cs2, "apps", "plain", now)
	if err != nil || bs2.Spec.RetryLeft != 0 {
		t.Errorf("retryLeft = %v, %v", bs2, err)
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{" a, ,b ,", []string{"a", "b"}},
	}
	for _, tt := range tests {
		got := splitList(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/stow-data", "/stow-data"},
		{`/mnt/with\040space`, "/mnt/with space"},
		{`/a\134b`, `/a\b`},
		{`/trailing\04`, `/trailing\04`},
	}
	for _, tt := range tests {
		if got := unescapeMountinfo(tt.in); got != tt.want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// /proc is always a mount point of its own.
	if got := mountPointOf("/proc/self"); got != "/proc" {
		t.Errorf("mountPointOf(/proc/self) = %q", got)
	}
}

// A local repository mounted at, inside or around the target volume is
// refused before anything is read or written.
func TestRepositoryApartFromTarget(t *testing.T) {
	j := &jobFlags{backend: restic.BackendFlags{Provider: v1beta1.ProviderLocal, Bucket: "/stow-data/repo"}}
	for target, bad := range map[string]bool{"/stow-data": true, "/stow-data/repo": true, "/stow-data/repo/x": true, "/stow-datax": false, "/data": false} {
		err := j.repositoryApart(target)
		if (err != nil) != bad {
			t.Errorf("target %s: %v, want refused %v", target, err, bad)
		}
	}
	s3 := &jobFlags{backend: restic.BackendFlags{Provider: v1beta1.ProviderS3, Bucket: "b", Endpoint: "http://x"}}
	if err := s3.repositoryApart("/"); err != nil {
		t.Errorf("s3: %v", err)
	}
}

func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var out, errb strings.Builder
		if code := run(context.Background(), []string{arg}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", arg, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), "stow dev ") {
			t.Errorf("%s printed %q", arg, out.String())
		}
	}
}

// Every command without positional arguments refuses them with exit code 2
// before doing anything.
func TestCommandsRefuseUnexpectedArguments(t *testing.T) {
	for _, name := range []string{"backup-pvc", "restore-pvc", "update-status", "maintain", "create-backupsession", "run-hook"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{name, "stray"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unexpected arguments") {
			t.Errorf("%s stray: exit %d, stderr %q; want 2 and unexpected arguments", name, code, errOut.String())
		}
	}
}
