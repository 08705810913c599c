package restic

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Secret keys read from the storage Secret (Stash's names). In a Job they
// arrive as environment variables through envFrom.
const (
	KeyResticPassword        = "RESTIC_PASSWORD"
	KeyCACertData            = "CA_CERT_DATA"
	KeyAWSAccessKeyID        = "AWS_ACCESS_KEY_ID"
	KeyAWSSecretAccessKey    = "AWS_SECRET_ACCESS_KEY"
	KeyAWSSessionToken       = "AWS_SESSION_TOKEN"
	KeyAWSDefaultRegion      = "AWS_DEFAULT_REGION"
	KeyGoogleProjectID       = "GOOGLE_PROJECT_ID"
	KeyGoogleServiceAccount  = "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"
	KeyGoogleCredentialsFile = "GOOGLE_APPLICATION_CREDENTIALS"
	KeyAzureAccountName      = "AZURE_ACCOUNT_NAME"
	KeyAzureAccountKey       = "AZURE_ACCOUNT_KEY"
	KeyAzureAccountSAS       = "AZURE_ACCOUNT_SAS"
	KeyB2AccountID           = "B2_ACCOUNT_ID"
	KeyB2AccountKey          = "B2_ACCOUNT_KEY"
	KeyRestServerUsername    = "REST_SERVER_USERNAME"
	KeyRestServerPassword    = "REST_SERVER_PASSWORD"
)

// swiftKeys are passed through unchanged when present (all optional).
var swiftKeys = []string{
	"ST_AUTH", "ST_USER", "ST_KEY",
	"OS_AUTH_URL", "OS_REGION_NAME", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD",
	"OS_TENANT_ID", "OS_TENANT_NAME", "OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID",
	"OS_PROJECT_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID",
	"OS_TRUST_ID", "OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME",
	"OS_APPLICATION_CREDENTIAL_SECRET", "OS_STORAGE_URL", "OS_AUTH_TOKEN",
}

// Workload identity: variables the cloud's pod identity webhook (or the
// user's runtimeSettings) puts into the Job's environment so that restic
// gets short-lived credentials from the pod's ServiceAccount instead of
// static keys (docs/cloud-identity.md). Only the variables of the
// repository's own provider reach restic.
var (
	awsIdentityKeys = []string{
		"AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_STS_REGIONAL_ENDPOINTS", // IRSA
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", // EKS Pod Identity, ECS
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	}
	gcpIdentityKeys   = []string{KeyGoogleCredentialsFile, "GOOGLE_ACCESS_TOKEN"}
	azureIdentityKeys = []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_SECRET", "AZURE_ENDPOINT_SUFFIX"}
)

// secretKeys are values that must never appear in a log line or an error.
var secretKeys = []string{
	KeyResticPassword, KeyAWSSecretAccessKey, KeyAWSSessionToken, KeyGoogleServiceAccount,
	KeyAzureAccountKey, KeyAzureAccountSAS, KeyB2AccountKey, KeyRestServerPassword,
	"ST_KEY", "OS_PASSWORD", "OS_APPLICATION_CREDENTIAL_SECRET", "OS_AUTH_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "GOOGLE_ACCESS_TOKEN", "AZURE_CLIENT_SECRET",
}

// Location is where a repository is and how restic reaches it: everything
// derived from a Backend and its Secret, ready to run restic with.
type Location struct {
	// Provider is the backend name (v1beta1.Provider*).
	Provider string
	// Repository is the value of RESTIC_REPOSITORY. It may carry REST
	// credentials, so it only ever goes into the environment.
	Repository string
	// Env holds the variables restic needs (RESTIC_REPOSITORY, RESTIC_PASSWORD,
	// provider credentials). Secrets travel here, never in arguments.
	Env map[string]string
	// Flags are global restic flags (--cacert, --insecure-tls, --option).
	Flags []string
	// Redact lists values to blank out of any text shown to people.
	Redact []string
}

// Display is the repository location with any credentials removed, for logs.
func (l *Location) Display() string { return redact(l.Repository, l.Redact) }

// NewLocation builds the restic repository and its environment for backend b,
// with secrets holding the storage Secret's keys. Files that restic needs on
// disk (CA certificate, GCS key) are written into fileDir with mode 0600.
func NewLocation(b v1beta1.Backend, secrets map[string]string, fileDir string) (*Location, error) {
	password := secrets[KeyResticPassword]
	if password == "" {
		return nil, fmt.Errorf("storage secret has no %s", KeyResticPassword)
	}
	loc := b.Location()
	// One progress line per minute instead of a terminal's worth per second.
	l := &Location{Provider: loc.Provider, Env: map[string]string{KeyResticPassword: password, "RESTIC_PROGRESS_FPS": "0.016666"}}
	if err := l.reach(b, loc, secrets, fileDir); err != nil {
		return nil, err
	}
	l.Env["RESTIC_REPOSITORY"] = l.Repository
	if ca := secrets[KeyCACertData]; ca != "" {
		f, err := writeSecretFile(fileDir, "ca.crt", ca)
		if err != nil {
			return nil, err
		}
		l.Flags = append(l.Flags, "--cacert", f)
	}
	for _, k := range secretKeys {
		if v := secrets[k]; v != "" {
			l.Redact = append(l.Redact, v)
		}
	}
	// Longest first, so a value containing another is blanked whole.
	sort.Slice(l.Redact, func(i, j int) bool { return len(l.Redact[i]) > len(l.Redact[j]) })
	return l, nil
}

// objectStore describes the backends that keep a repository under a bucket
// (or container) and prefix: restic's scheme, what the bucket is called, the
// Secret keys restic reads, and the --option prefix of the connection limit.
var objectStore = map[string]struct {
	scheme, bucket, connections string
	keys                        []string
}{
	v1beta1.ProviderGCS:   {"gs", "a bucket", "gs", append([]string{KeyGoogleProjectID}, gcpIdentityKeys...)},
	v1beta1.ProviderAzure: {"azure", "a container", "azure", append([]string{KeyAzureAccountName, KeyAzureAccountKey, KeyAzureAccountSAS}, azureIdentityKeys...)},
	v1beta1.ProviderSwift: {"swift", "a container", "", swiftKeys},
	v1beta1.ProviderB2:    {"b2", "a bucket", "b2", []string{KeyB2AccountID, KeyB2AccountKey}},
}

// reach sets the repository, the provider's credentials and its flags.
func (l *Location) reach(b v1beta1.Backend, loc v1beta1.BackendLocation, secrets map[string]string, fileDir string) error {
	copyKeys := func(keys ...string) {
		for _, k := range keys {
			if v, ok := secrets[k]; ok && v != "" {
				l.Env[k] = v
			}
		}
	}
	switch loc.Provider {
	case v1beta1.ProviderLocal:
		if !filepath.IsAbs(loc.Bucket) {
			return fmt.Errorf("local backend mountPath %q is not absolute", loc.Bucket)
		}
		// subPath selects the directory mounted at mountPath, so the
		// repository is the mount itself.
		l.Repository = filepath.Clean(loc.Bucket)
	case v1beta1.ProviderS3:
		if loc.Endpoint == "" || loc.Bucket == "" {
			return errors.New("s3 backend needs an endpoint and a bucket")
		}
		l.Repository = "s3:" + joinURL(strings.TrimRight(loc.Endpoint, "/"), loc.Bucket, loc.Prefix)
		copyKeys(KeyAWSAccessKeyID, KeyAWSSecretAccessKey, KeyAWSSessionToken)
		copyKeys(awsIdentityKeys...)
		if b.S3.Region != "" {
			l.Env[KeyAWSDefaultRegion] = b.S3.Region
		}
		if b.S3.InsecureTLS {
			l.Flags = append(l.Flags, "--insecure-tls")
		}
	case v1beta1.ProviderGCS, v1beta1.ProviderAzure, v1beta1.ProviderSwift, v1beta1.ProviderB2:
		o := objectStore[loc.Provider]
		if loc.Bucket == "" {
			return fmt.Errorf("%s backend needs %s", loc.Provider, o.bucket)
		}
		if loc.Provider == v1beta1.ProviderB2 {
			for _, k := range []string{KeyB2AccountID, KeyB2AccountKey} {
				if secrets[k] == "" {
					return fmt.Errorf("storage secret has no %s (required for b2)", k)
				}
			}
		}
		l.Repository = o.scheme + ":" + loc.Bucket + ":/" + strings.Trim(loc.Prefix, "/")
		copyKeys(o.keys...)
		if key := secrets[KeyGoogleServiceAccount]; key != "" && loc.Provider == v1beta1.ProviderGCS {
			// A Secret's key file wins over workload identity.
			f, err := writeSecretFile(fileDir, "gcs-service-account.json", key)
			if err != nil {
				return err
			}
			l.Env[KeyGoogleCredentialsFile] = f
		}
		if o.connections != "" && loc.MaxConnections > 0 {
			l.Flags = append(l.Flags, "--option", o.connections+".connections="+strconv.FormatInt(loc.MaxConnections, 10))
		}
	case v1beta1.ProviderRest:
		return l.reachRest(loc.Endpoint, secrets)
	default:
		return errors.New("backend has no provider set (local, s3, gcs, azure, swift, b2, rest)")
	}
	return nil
}

// reachRest puts the REST server's credentials into the repository URL,
// the only place restic reads them from.
func (l *Location) reachRest(rawURL string, secrets map[string]string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("rest backend url %q is not an http(s) URL", redactURL(rawURL))
	}
	if user := secrets[KeyRestServerUsername]; user != "" {
		if pw := secrets[KeyRestServerPassword]; pw != "" {
			u.User = url.UserPassword(user, pw)
		} else {
			u.User = url.User(user)
		}
	}
	l.Repository = "rest:" + u.String()
	if u.User != nil {
		// The password appears URL-escaped inside the repository string.
		if pw, ok := u.User.Password(); ok {
			l.Redact = append(l.Redact, url.UserPassword("x", pw).String()[2:])
		}
	}
	return nil
}

// BackendFlags are the repository flags the built-in Functions pass to the
// runner (pkg/builtin): REPOSITORY_PROVIDER, _BUCKET, _ENDPOINT, _REGION,
// _PREFIX, _INSECURE_TLS and MAX_CONNECTIONS.
type BackendFlags struct {
	Provider, Bucket, Endpoint, Region, Prefix string
	InsecureTLS                                bool
	MaxConnections                             int64
}

// Backend turns the flags back into a v1beta1.Backend. For local the bucket is
// the mount path; for rest the endpoint is the URL (else bucket + prefix).
func (f BackendFlags) Backend() (v1beta1.Backend, error) {
	var b v1beta1.Backend
	switch f.Provider {
	case v1beta1.ProviderLocal:
		p := f.Bucket
		if p == "" {
			p = f.Endpoint
		}
		if p == "" {
			return b, errors.New("local backend needs --bucket (the mount path)")
		}
		if f.Prefix != "" {
			p = filepath.Join(p, f.Prefix)
		}
		b.Local = &v1beta1.LocalSpec{MountPath: p}
	case v1beta1.ProviderS3:
		b.S3 = &v1beta1.S3Spec{Endpoint: f.Endpoint, Bucket: f.Bucket, Prefix: f.Prefix, Region: f.Region, InsecureTLS: f.InsecureTLS}
	case v1beta1.ProviderGCS:
		b.GCS = &v1beta1.GCSSpec{Bucket: f.Bucket, Prefix: f.Prefix, MaxConnections: f.MaxConnections}
	case v1beta1.ProviderAzure:
		b.Azure = &v1beta1.AzureSpec{Container: f.Bucket, Prefix: f.Prefix, MaxConnections: f.MaxConnections}
	case v1beta1.ProviderSwift:
		b.Swift = &v1beta1.SwiftSpec{Container: f.Bucket, Prefix: f.Prefix}
	case v1beta1.ProviderB2:
		b.B2 = &v1beta1.B2Spec{Bucket: f.Bucket, Prefix: f.Prefix, MaxConnections: f.MaxConnections}
	case v1beta1.ProviderRest:
		u := f.Endpoint
		if u == "" && f.Bucket != "" {
			u = "https://" + joinURL(f.Bucket, f.Prefix)
		}
		b.Rest = &v1beta1.RestServerSpec{URL: u}
	case "":
		return b, errors.New("no repository provider given (--provider)")
	default:
		return b, fmt.Errorf("unknown repository provider %q (want local, s3, gcs, azure, swift, b2 or rest)", f.Provider)
	}
	return b, nil
}

// ParseRepositoryURL turns a restic repository string as a user types it
// (`/path`, `local:/path`, `s3:http://host/bucket/prefix`, `rest:https://...`,
// `gs:bucket:/prefix`, `azure:c:/p`, `swift:c:/p`, `b2:bucket:/prefix`) into a Backend.
func ParseRepositoryURL(repo string) (v1beta1.Backend, error) {
	var b v1beta1.Backend
	scheme, rest, found := strings.Cut(repo, ":")
	if !found || strings.HasPrefix(repo, "/") {
		scheme, rest = "local", repo
	}
	bucketPrefix := func() (string, string) {
		bucket, prefix, _ := strings.Cut(rest, ":")
		return bucket, strings.Trim(prefix, "/")
	}
	switch scheme {
	case "local":
		if !filepath.IsAbs(rest) {
			abs, err := filepath.Abs(rest)
			if err != nil {
				return b, err
			}
			rest = abs
		}
		b.Local = &v1beta1.LocalSpec{MountPath: rest}
	case "s3":
		u, err := url.Parse(rest)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return b, fmt.Errorf("s3 repository %q must look like s3:http(s)://host/bucket[/prefix]", redactURL(repo))
		}
		bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
		if bucket == "" {
			return b, fmt.Errorf("s3 repository %q has no bucket", redactURL(repo))
		}
		b.S3 = &v1beta1.S3Spec{Endpoint: u.Scheme + "://" + u.Host, Bucket: bucket, Prefix: prefix}
	case "gs":
		bucket, prefix := bucketPrefix()
		b.GCS = &v1beta1.GCSSpec{Bucket: bucket, Prefix: prefix}
	case "azure":
		c, prefix := bucketPrefix()
		b.Azure = &v1beta1.AzureSpec{Container: c, Prefix: prefix}
	case "swift":
		c, prefix := bucketPrefix()
		b.Swift = &v1beta1.SwiftSpec{Container: c, Prefix: prefix}
	case "b2":
		bucket, prefix := bucketPrefix()
		b.B2 = &v1beta1.B2Spec{Bucket: bucket, Prefix: prefix}
	case "rest":
		b.Rest = &v1beta1.RestServerSpec{URL: rest}
	default:
		return b, fmt.Errorf("unsupported repository %q (want a path or local:, s3:, gs:, azure:, swift:, b2:, rest:)", redactURL(repo))
	}
	return b, nil
}

func joinURL(parts ...string) string {
	var out []string
	for i, p := range parts {
		if i > 0 {
			p = strings.Trim(p, "/")
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "/")
}

func writeSecretFile(dir, name, content string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("no directory to write %s into", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %v", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %v", p, err)
	}
	return p, nil
}

// redact blanks every secret value out of s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

// redactURL hides a password embedded in a URL-like string.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	at := strings.Index(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && slash < at) {
		return s
	}
	user := rest[:at]
	if c := strings.Index(user, ":"); c >= 0 {
		user = user[:c] + ":***"
	}
	return s[:i+3] + user + rest[at:]
}
