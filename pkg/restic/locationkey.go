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
	switch {
	case b.S3 != nil:
		return "s3:" + endpointHost(b.S3.Endpoint) + "/" + b.S3.Bucket + "/" + p(b.S3.Prefix)
	case b.GCS != nil:
		return "gs:" + b.GCS.Bucket + "/" + p(b.GCS.Prefix)
	case b.Azure != nil:
		return "azure:" + b.Azure.Container + "/" + p(b.Azure.Prefix)
	case b.Swift != nil:
		return "swift:" + b.Swift.Container + "/" + p(b.Swift.Prefix)
	case b.B2 != nil:
		return "b2:" + b.B2.Bucket + "/" + p(b.B2.Prefix)
	case b.Rest != nil:
		u, err := url.Parse(b.Rest.URL)
		if err != nil || u.Host == "" {
			return "rest:" + b.Rest.URL
		}
		return "rest:" + strings.ToLower(u.Host) + "/" + p(u.Path)
	case b.Local != nil:
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

// endpointHost is an S3 endpoint without scheme, path and case: the same
// server written as "https://S3.example.com/" or "s3.example.com" is one.
func endpointHost(endpoint string) string {
	e := strings.ToLower(strings.TrimSpace(endpoint))
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		e = u.Host
	}
	return strings.TrimRight(e, "/")
}
