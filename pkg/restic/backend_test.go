package restic

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestNewLocation(t *testing.T) {
	base := map[string]string{KeyResticPassword: "s3cret-pw"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{KeyResticPassword: "s3cret-pw"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		backend  v1beta1.Backend
		secrets  map[string]string
		wantRepo string
		wantEnv  map[string]string // subset that must be present
		noEnv    []string          // keys that must be absent
		flags    []string
		wantErr  string
	}{
		{
			name:     "local",
			backend:  v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/repo/", SubPath: "x"}},
			secrets:  base,
			wantRepo: "/repo",
		},
		{
			name:     "local relative path",
			backend:  v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "repo"}},
			secrets:  base,
			wantErr:  "not absolute",
			wantRepo: "",
		},
		{
			name:     "s3 with prefix, region, insecure tls",
			backend:  v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "https://minio.local:9000/", Bucket: "b", Prefix: "/team/a/", Region: "eu-1", InsecureTLS: true}},
			secrets:  with(KeyAWSAccessKeyID, "AKID", KeyAWSSecretAccessKey, "SECRET"),
			wantRepo: "s3:https://minio.local:9000/b/team/a",
			wantEnv:  map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_DEFAULT_REGION": "eu-1"},
			flags:    []string{"--insecure-tls"},
		},
		{
			name:    "s3 with IRSA from the pod's ServiceAccount; no other cloud's identity",
			backend: v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "b"}},
			secrets: with("AWS_ROLE_ARN", "arn:aws:iam::1:role/backup", "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
				"AWS_REGION", "eu-west-1", "AZURE_CLIENT_ID", "az", "GOOGLE_APPLICATION_CREDENTIALS", "/gcp.json"),
			wantRepo: "s3:s3.amazonaws.com/b",
			wantEnv:  map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::1:role/backup", "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "AWS_REGION": "eu-west-1"},
			noEnv:    []string{"AZURE_CLIENT_ID", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_ACCESS_KEY_ID"},
		},
		{
			name:     "s3 with EKS Pod Identity",
			backend:  v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "b"}},
			secrets:  with("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"),
			wantRepo: "s3:s3.amazonaws.com/b",
			wantEnv:  map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
		},
		{
			name:     "azure workload identity, no account key",
			backend:  v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c"}},
			secrets:  with(KeyAzureAccountName, "acct", "AZURE_CLIENT_ID", "cid", "AZURE_TENANT_ID", "tid", "AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token", "AWS_ROLE_ARN", "arn"),
			wantRepo: "azure:c:/",
			wantEnv:  map[string]string{"AZURE_ACCOUNT_NAME": "acct", "AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"},
			noEnv:    []string{"AWS_ROLE_ARN", KeyAzureAccountKey},
		},
		{
			name:     "gcs workload identity federation (credential configuration file)",
			backend:  v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b"}},
			secrets:  with(KeyGoogleProjectID, "p", "GOOGLE_APPLICATION_CREDENTIALS", "/var/run/gcp/credential-configuration.json", "AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
			wantRepo: "gs:b:/",
			wantEnv:  map[string]string{"GOOGLE_PROJECT_ID": "p", "GOOGLE_APPLICATION_CREDENTIALS": "/var/run/gcp/credential-configuration.json"},
			noEnv:    []string{"AWS_WEB_IDENTITY_TOKEN_FILE"},
		},
		{
			name:     "s3 without keys (IRSA)",
			backend:  v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "b"}},
			secrets:  base,
			wantRepo: "s3:s3.amazonaws.com/b",
			noEnv:    []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"},
		},
		{
			name:     "gcs with key file and connections",
			backend:  v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "gb", Prefix: "p", MaxConnections: 4}},
			secrets:  with(KeyGoogleProjectID, "proj", KeyGoogleServiceAccount, `{"type":"service_account"}`),
			wantRepo: "gs:gb:/p",
			wantEnv:  map[string]string{"GOOGLE_PROJECT_ID": "proj"},
			noEnv:    []string{KeyGoogleServiceAccount},
			flags:    []string{"--option", "gs.connections=4"},
		},
		{
			name:     "azure",
			backend:  v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c", Prefix: "x/y", MaxConnections: 2}},
			secrets:  with(KeyAzureAccountName, "acct", KeyAzureAccountKey, "key"),
			wantRepo: "azure:c:/x/y",
			wantEnv:  map[string]string{"AZURE_ACCOUNT_NAME": "acct", "AZURE_ACCOUNT_KEY": "key"},
			flags:    []string{"--option", "azure.connections=2"},
		},
		{
			name:     "swift passes openstack keys",
			backend:  v1beta1.Backend{Swift: &v1beta1.SwiftSpec{Container: "c"}},
			secrets:  with("OS_AUTH_URL", "https://keystone", "OS_PASSWORD", "pw", "UNRELATED", "x"),
			wantRepo: "swift:c:/",
			wantEnv:  map[string]string{"OS_AUTH_URL": "https://keystone", "OS_PASSWORD": "pw"},
			noEnv:    []string{"UNRELATED"},
		},
		{
			name:     "b2",
			backend:  v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "bb", Prefix: "p", MaxConnections: 8}},
			secrets:  with(KeyB2AccountID, "id", KeyB2AccountKey, "k"),
			wantRepo: "b2:bb:/p",
			wantEnv:  map[string]string{"B2_ACCOUNT_ID": "id", "B2_ACCOUNT_KEY": "k"},
			flags:    []string{"--option", "b2.connections=8"},
		},
		{
			name:    "b2 needs both keys",
			backend: v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "bb"}},
			secrets: with(KeyB2AccountID, "id"),
			wantErr: "B2_ACCOUNT_KEY",
		},
		{
			name:     "rest with user and password in the URL",
			backend:  v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "https://rest.local:8000/repo"}},
			secrets:  with(KeyRestServerUsername, "u", KeyRestServerPassword, "p@ss/word"),
			wantRepo: "rest:https://u:p%40ss%2Fword@rest.local:8000/repo",
		},
		{
			name:     "rest without credentials",
			backend:  v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://127.0.0.1:8000/"}},
			secrets:  base,
			wantRepo: "rest:http://127.0.0.1:8000/",
		},
		{
			name:    "rest bad URL",
			backend: v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "ftp://x"}},
			secrets: base,
			wantErr: "not an http(s) URL",
		},
		{
			name:     "ca cert written to a file",
			backend:  v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "https://h", Bucket: "b"}},
			secrets:  with(KeyCACertData, "-----BEGIN CERTIFICATE-----"),
			wantRepo: "s3:https://h/b",
			noEnv:    []string{KeyCACertData},
		},
		{
			name:    "no password",
			backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/r"}},
			secrets: map[string]string{},
			wantErr: "RESTIC_PASSWORD",
		},
		{
			name:    "no provider",
			backend: v1beta1.Backend{},
			secrets: base,
			wantErr: "no provider",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			loc, err := NewLocation(tt.backend, tt.secrets, dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.Repository != tt.wantRepo || loc.Env["RESTIC_REPOSITORY"] != tt.wantRepo {
				t.Errorf("repository = %q (env %q), want %q", loc.Repository, loc.Env["RESTIC_REPOSITORY"], tt.wantRepo)
			}
			if loc.Env[KeyResticPassword] != "s3cret-pw" {
				t.Errorf("RESTIC_PASSWORD not in env")
			}
			for k, v := range tt.wantEnv {
				if loc.Env[k] != v {
					t.Errorf("env %s = %q, want %q", k, loc.Env[k], v)
				}
			}
			for _, k := range tt.noEnv {
				if _, ok := loc.Env[k]; ok {
					t.Errorf("env %s present, want absent", k)
				}
			}
			// Flags other than file paths must match exactly.
			var flags []string
			for i := 0; i < len(loc.Flags); i++ {
				if loc.Flags[i] == "--cacert" {
					i++
					continue
				}
				flags = append(flags, loc.Flags[i])
			}
			if len(flags) != 0 || len(tt.flags) != 0 {
				if !reflect.DeepEqual(flags, tt.flags) {
					t.Errorf("flags = %q, want %q", flags, tt.flags)
				}
			}
			// No secret value may appear in the arguments.
			for _, f := range loc.Flags {
				for _, s := range []string{"s3cret-pw", "SECRET", "key", "p@ss/word"} {
					if strings.Contains(f, s) {
						t.Errorf("flag %q contains a secret", f)
					}
				}
			}
			if strings.Contains(loc.Display(), "s3cret-pw") || strings.Contains(loc.Display(), "p%40ss%2Fword") {
				t.Errorf("Display() leaks a secret: %s", loc.Display())
			}
		})
	}
}

func TestNewLocationFiles(t *testing.T) {
	dir := t.TempDir()
	loc, err := NewLocation(v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b"}}, map[string]string{
		KeyResticPassword: "pw", KeyGoogleServiceAccount: `{"k":1}`, KeyCACertData: "CA",
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := loc.Env[KeyGoogleCredentialsFile]
	if filepath.Dir(keyFile) != dir {
		t.Fatalf("GOOGLE_APPLICATION_CREDENTIALS = %q, want a file in %s", keyFile, dir)
	}
	checkFile(t, keyFile, `{"k":1}`)
	if len(loc.Flags) < 2 || loc.Flags[len(loc.Flags)-2] != "--cacert" {
		t.Fatalf("flags %q: want --cacert <file>", loc.Flags)
	}
	checkFile(t, loc.Flags[len(loc.Flags)-1], "CA")
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q", path, b, want)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func TestBackendFlags(t *testing.T) {
	tests := []struct {
		name    string
		flags   BackendFlags
		want    v1beta1.Backend
		wantErr bool
	}{
		{"local bucket is mount path", BackendFlags{Provider: "local", Bucket: "/repo"}, v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/repo"}}, false},
		{"local with prefix", BackendFlags{Provider: "local", Bucket: "/repo", Prefix: "a"}, v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/repo/a"}}, false},
		{"s3", BackendFlags{Provider: "s3", Bucket: "b", Endpoint: "http://e", Prefix: "p", Region: "r", InsecureTLS: true},
			v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "http://e", Bucket: "b", Prefix: "p", Region: "r", InsecureTLS: true}}, false},
		{"gcs", BackendFlags{Provider: "gcs", Bucket: "b", MaxConnections: 3}, v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", MaxConnections: 3}}, false},
		{"azure", BackendFlags{Provider: "azure", Bucket: "c"}, v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c"}}, false},
		{"swift", BackendFlags{Provider: "swift", Bucket: "c", Prefix: "p"}, v1beta1.Backend{Swift: &v1beta1.SwiftSpec{Container: "c", Prefix: "p"}}, false},
		{"b2", BackendFlags{Provider: "b2", Bucket: "b"}, v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b"}}, false},
		{"rest endpoint", BackendFlags{Provider: "rest", Endpoint: "http://h:8000/r", Bucket: "h:8000"}, v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://h:8000/r"}}, false},
		{"rest from host and path", BackendFlags{Provider: "rest", Bucket: "h:8000", Prefix: "/r"}, v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "https://h:8000/r"}}, false},
		{"no provider", BackendFlags{}, v1beta1.Backend{}, true},
		{"unknown provider", BackendFlags{Provider: "ftp"}, v1beta1.Backend{}, true},
		{"local without path", BackendFlags{Provider: "local"}, v1beta1.Backend{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.Backend()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRepositoryURL(t *testing.T) {
	tests := []struct {
		repo    string
		want    v1beta1.Backend
		wantErr bool
	}{
		{"/data/repo", v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/data/repo"}}, false},
		{"local:/data/repo", v1beta1.Backend{Local: &v1beta1.LocalSpec{MountPath: "/data/repo"}}, false},
		{"s3:http://127.0.0.1:9000/bucket", v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "bucket"}}, false},
		{"s3:https://h/bucket/a/b", v1beta1.Backend{S3: &v1beta1.S3Spec{Endpoint: "https://h", Bucket: "bucket", Prefix: "a/b"}}, false},
		{"s3:https://h", v1beta1.Backend{}, true},
		{"gs:b:/p", v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "b", Prefix: "p"}}, false},
		{"azure:c:/", v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c"}}, false},
		{"swift:c:/p", v1beta1.Backend{Swift: &v1beta1.SwiftSpec{Container: "c", Prefix: "p"}}, false},
		{"b2:b:/p", v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b", Prefix: "p"}}, false},
		{"rest:http://h:8000/", v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://h:8000/"}}, false},
		{"sftp:host:/x", v1beta1.Backend{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			got, err := ParseRepositoryURL(tt.repo)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rest:https://u:pw@h/r", "rest:https://u:***@h/r"},
		{"rest:https://u@h/r", "rest:https://u@h/r"},
		{"s3:https://h/b", "s3:https://h/b"},
		{"rest:https://h/a@b", "rest:https://h/a@b"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := redact("password pw and pwlong", []string{"pwlong", "pw"}); got != "password *** and ***" {
		// "password" contains "pw"? no: p-a-s-s-w-o-r-d has no "pw".
		t.Errorf("redact = %q", got)
	}
}
