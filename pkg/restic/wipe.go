package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// ErrNoWipe: the restic binary lacks Stow's stow-wipe command
// (hack/restic/README.md).
var ErrNoWipe = errors.New("this restic cannot wipe a repository (it lacks Stow's stow-wipe command)")

// WipedType counts the files of one restic file type (data, snapshot,
// index, lock, key, config) that a wipe removed.
type WipedType struct {
	Type  string `json:"type"`
	Files int64  `json:"files"`
	Bytes int64  `json:"bytes"`
}

// WipeResult is what Wipe removed.
type WipeResult struct {
	// Absent: there was no repository at the location (nothing to remove;
	// a wipe that ran before already removed it).
	Absent  bool        `json:"absent,omitempty"`
	Removed []WipedType `json:"removed,omitempty"`
}

// Files is the number of files removed.
func (w WipeResult) Files() int64 {
	var n int64
	for _, t := range w.Removed {
		n += t.Files
	}
	return n
}

// Bytes is the size of the files removed.
func (w WipeResult) Bytes() int64 {
	var n int64
	for _, t := range w.Removed {
		n += t.Bytes
	}
	return n
}

// Wipe deletes the repository: every file restic keeps at its location,
// through restic's own backend code (Stow's stow-wipe command), and
// nothing outside the repository's own path. The caller must have made sure
// that no one else uses it. A location with no repository is Absent, not an
// error.
func (r *Restic) Wipe(ctx context.Context) (WipeResult, error) {
	res, err := r.runOpen(ctx, []string{"stow-wipe"})
	if err != nil {
		return WipeResult{}, err
	}
	if res.code != 0 {
		if unknownCommand(res.stderr) {
			return WipeResult{}, ErrNoWipe
		}
		rerr := res.err("stow-wipe")
		if errors.Is(rerr, ErrNoRepository) {
			return WipeResult{Absent: true}, nil
		}
		return WipeResult{}, rerr
	}
	line := firstJSON(res.stdout, '{')
	if line == nil {
		return WipeResult{}, errors.New("restic stow-wipe printed no JSON result")
	}
	var out WipeResult
	if err := json.Unmarshal(line, &out); err != nil {
		return WipeResult{}, fmt.Errorf("parsing stow-wipe output: %v", err)
	}
	return out, nil
}

// WipeRefusal says why the data of backend b must not be wiped, or "" when
// it may: only a repository in its own part of a bucket can be deleted
// without deleting someone else's data. The local and B2 backends are not
// supported (validation rejects wipeOut for them).
func WipeRefusal(b v1beta1.Backend) string {
	loc := b.Location()
	switch loc.Provider {
	case v1beta1.ProviderLocal, v1beta1.ProviderB2:
		return fmt.Sprintf("wipeOut is not supported for the %s backend", loc.Provider)
	case v1beta1.ProviderS3, v1beta1.ProviderGCS, v1beta1.ProviderAzure, v1beta1.ProviderSwift, v1beta1.ProviderRest:
	default:
		return "the repository has no backend that wipeOut supports"
	}
	if loc.Bucket == "" || cleanPrefix(loc.Prefix) == "" {
		return fmt.Sprintf("the repository has no prefix within its %s bucket: wiping a whole bucket is refused", loc.Provider)
	}
	return ""
}

// Overlap tells whether backends a and b (of Repositories in namespaces
// nsA and nsB) reach overlapping data: the same bucket of the same
// server with one prefix equal to, or a folder of, the other. Prefixes
// "a" and "ab" do not overlap; "a" and "a/b" do.
func Overlap(a v1beta1.Backend, nsA string, b v1beta1.Backend, nsB string) bool {
	la, lb := a.Location(), b.Location()
	if la.Provider != lb.Provider {
		return false
	}
	switch la.Provider {
	case v1beta1.ProviderS3:
		if endpointHost(la.Endpoint) != endpointHost(lb.Endpoint) || la.Bucket != lb.Bucket {
			return false
		}
	case v1beta1.ProviderRest:
		if !strings.EqualFold(la.Bucket, lb.Bucket) {
			return false
		}
	case v1beta1.ProviderLocal:
		return LocationKey(a, nsA, "a") == LocationKey(b, nsB, "b")
	default:
		if la.Bucket != lb.Bucket {
			return false
		}
	}
	pa, pb := cleanPrefix(la.Prefix), cleanPrefix(lb.Prefix)
	return pa == pb || pa == "" || pb == "" || strings.HasPrefix(pa, pb+"/") || strings.HasPrefix(pb, pa+"/")
}

// cleanPrefix is a prefix without leading, trailing or doubled slashes.
func cleanPrefix(p string) string {
	return strings.Trim(path.Clean("/"+p), "/")
}
