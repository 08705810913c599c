package restic

import (
	"net/url"
	"path"
	"strings"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// LocationKey names where a repository's data lives, independent of which
// Repository object points there: two Repository objects (or namespaces)
// on one bucket and prefix get the same key, so the operator serializes
// their work as one repository's. Credentials and tuning (region, TLS,
// connections) are not part of it. namespace is the Repository's, needed
// for a local backend on a PVC.
//
// A local backend is keyed by its volume: a PVC, an NFS export or a host
// path, plus subPath. Any other volume type cannot be recognized across
// Repository objects and is keyed by the Repository object itself (name).
func LocationKey(b v1beta1.Backend, namespace, name string) string {
	p := func(prefix string) string { return strings.Trim(path.Clean("/"+prefix), "/") }
	loc := b.Location()
	switch loc.Provider {
	case v1beta1.ProviderS3:
		return "s3:" + endpointHost(loc.Endpoint) + "/" + loc.Bucket + "/" + p(loc.Prefix)
	case v1beta1.ProviderGCS, v1beta1.ProviderAzure, v1beta1.ProviderSwift, v1beta1.ProviderB2:
		return keyScheme[loc.Provider] + ":" + loc.Bucket + "/" + p(loc.Prefix)
	case v1beta1.ProviderRest:
		if loc.Bucket == "" {
			return "rest:" + loc.Endpoint
		}
		return "rest:" + strings.ToLower(loc.Bucket) + "/" + p(loc.Prefix)
	case v1beta1.ProviderLocal:
		l := b.Local
		sub := p(l.SubPath)
		switch {
		case l.PersistentVolumeClaim != nil:
			return "local:pvc:" + namespace + "/" + l.PersistentVolumeClaim.ClaimName + "/" + sub
		case l.NFS != nil:
			return "local:nfs:" + strings.ToLower(l.NFS.Server) + ":" + p(l.NFS.Path) + "/" + sub
		case l.HostPath != nil:
			return "local:hostpath:" + p(l.HostPath.Path) + "/" + sub
		}
	}
	return "repository:" + namespace + "/" + name
}

// keyScheme is the scheme of a location key: restic's name of the backend kind.
var keyScheme = map[string]string{v1beta1.ProviderGCS: "gs", v1beta1.ProviderAzure: "azure", v1beta1.ProviderSwift: "swift", v1beta1.ProviderB2: "b2"}

// endpointHost is an S3 endpoint without scheme, path and case: the same
// server written as "https://S3.example.com/" or "s3.example.com" is one.
func endpointHost(endpoint string) string {
	e := strings.ToLower(strings.TrimSpace(endpoint))
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		e = u.Host
	}
	return strings.TrimRight(e, "/")
}
