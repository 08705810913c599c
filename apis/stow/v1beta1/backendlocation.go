package v1beta1

import (
	"net/url"
	"strings"
)

// BackendLocation is where a backend keeps its repository, in the terms
// shared by every backend kind. It is the one switch over backend kinds that
// the repository key, the Job variables and the restic location build on.
type BackendLocation struct {
	// Provider is the backend kind (ProviderS3, ...), empty when not
	// exactly one backend is set.
	Provider string
	// Bucket is the bucket or container; a local backend's mountPath; a
	// REST server's host.
	Bucket string
	// Prefix is the path inside Bucket (a REST server's URL path, without
	// the leading slash).
	Prefix string
	// Endpoint is an S3 endpoint or a REST server's URL.
	Endpoint string
	// MaxConnections is the backend's connection limit (0: restic's).
	MaxConnections int64
}

// Location returns where b keeps its repository.
func (b Backend) Location() BackendLocation {
	l := BackendLocation{Provider: b.Provider()}
	switch l.Provider {
	case ProviderLocal:
		l.Bucket = b.Local.MountPath
	case ProviderS3:
		l.Bucket, l.Prefix, l.Endpoint = b.S3.Bucket, b.S3.Prefix, b.S3.Endpoint
	case ProviderGCS:
		l.Bucket, l.Prefix, l.MaxConnections = b.GCS.Bucket, b.GCS.Prefix, b.GCS.MaxConnections
	case ProviderAzure:
		l.Bucket, l.Prefix, l.MaxConnections = b.Azure.Container, b.Azure.Prefix, b.Azure.MaxConnections
	case ProviderSwift:
		l.Bucket, l.Prefix = b.Swift.Container, b.Swift.Prefix
	case ProviderB2:
		l.Bucket, l.Prefix, l.MaxConnections = b.B2.Bucket, b.B2.Prefix, b.B2.MaxConnections
	case ProviderRest:
		l.Endpoint = b.Rest.URL
		if u, err := url.Parse(b.Rest.URL); err == nil {
			l.Bucket, l.Prefix = u.Host, strings.TrimPrefix(u.Path, "/")
		}
	}
	return l
}
