// Package version holds the release version stamped into Stow's binaries.
// hack/version.sh computes it and every build passes it with
//
//	-ldflags "-X github.com/stowhq/stow/pkg/version.Version=<version>"
//
// so the operator, the in-Job runner and the kubectl plugin of one build
// report the same value. A plain `go build` leaves it "dev".
package version

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version, e.g. v0.3.0 or v0.3.0-4-gabc1234-dirty.
var Version = "dev"

// LabelKey is the well-known label that carries Label() on the operator's
// pod (deploy/kustomization.yaml) and on every Job pod the operator creates.
const LabelKey = "app.kubernetes.io/version"

var notLabel = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Label is Version as a valid label value: at most 63 characters of
// [A-Za-z0-9._-], starting and ending with an alphanumeric ("+" of semver
// build metadata becomes "_"). Empty versions are "dev".
func Label() string {
	v := notLabel.ReplaceAllString(Version, "_")
	if len(v) > 63 {
		v = v[:63]
	}
	v = strings.Trim(v, "._-")
	if v == "" {
		return "dev"
	}
	return v
}

// String is the one line `--version` prints: the program, the version, the
// VCS revision Go recorded (when built from a checkout), Go and the platform.
func String(program string) string {
	s := program + " " + Version
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, kv := range info.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.modified":
				modified = kv.Value
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if modified == "true" {
				rev += "-dirty"
			}
			s += " (commit " + rev + ")"
		}
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
