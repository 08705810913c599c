package main

import (
	"archive/tar"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPushIndexAndPullBack pushes a two-platform index to an in-process
// registry, as a release does (hack/build-image.sh --push), and pulls it
// back: each platform's manifest must be there, with that platform's config
// and that platform's binaries in /usr/local/bin.
func TestPushIndexAndPullBack(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	var platforms platformFlag
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		d := filepath.Join(dir, strings.ReplaceAll(p, "/", "-"))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"stow", "stow-operator"} {
			if err := os.WriteFile(filepath.Join(d, b), []byte(b+" for "+p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := platforms.Set(p + "=" + d); err != nil {
			t.Fatal(err)
		}
	}
	ref := host + "/stowhq/stow:v0.0.1-test"
	if err := run(options{image: stowImage, ref: ref, push: true, caBundle: filepath.Join(dir, "none"), version: "v0.0.1-test", platforms: platforms}); err != nil {
		t.Fatalf("push: %v", err)
	}

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
	}
	for _, want := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		// What a node of that platform pulls: the tag resolved by platform.
		img, err := remote.Image(r, remote.WithPlatform(want))
		if err != nil {
			t.Fatalf("pull %s: %v", want, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != want.OS || cf.Architecture != want.Architecture {
			t.Errorf("%s: config says %s/%s", want, cf.OS, cf.Architecture)
		}
		if v := cf.Config.Labels["org.opencontainers.image.version"]; v != "v0.0.1-test" {
			t.Errorf("%s: version label %q", want, v)
		}
		if cf.Config.User != "65534:65534" {
			t.Errorf("%s: user %q, want the non-root 65534:65534", want, cf.Config.User)
		}
		files := imageFiles(t, img)
		if got, wantData := files["usr/local/bin/stow"], "stow for "+want.String(); got != wantData {
			t.Errorf("%s: /usr/local/bin/stow holds %q, want %q", want, got, wantData)
		}
		if _, ok := files["etc/passwd"]; !ok {
			t.Errorf("%s: no /etc/passwd", want)
		}
	}
}

// TestRebuildIsReproducible: the same binaries give the same digest, so a
// re-run of a release pushes nothing new.
func TestRebuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "stow")
	if err := os.WriteFile(b, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for range 2 {
		img, err := buildImage(v1.Platform{OS: "linux", Architecture: "arm64"}, []string{b}, nil, "dev", stowImage)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ: %s, %s", digests[0], digests[1])
	}
}

func TestOutNeedsOnePlatform(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "stow")
	if err := os.WriteFile(b, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	two := platformFlag{
		{platform: v1.Platform{OS: "linux", Architecture: "amd64"}, bins: []string{b}},
		{platform: v1.Platform{OS: "linux", Architecture: "arm64"}, bins: []string{b}},
	}
	err := run(options{image: stowImage, ref: "example.com/stow:x", out: filepath.Join(dir, "x.tar"), platforms: two})
	if err == nil || !strings.Contains(err.Error(), "-out writes one platform") {
		t.Errorf("err = %v", err)
	}
	var p platformFlag
	if err := p.Set("linux/arm64"); err == nil {
		t.Error("-platform without =DIR accepted")
	}
}

func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(data)
		}
		rc.Close()
	}
	return files
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestEntrypointAndUser: the local cluster's pause and probe images run their
// own binary as root; the Stow image runs stow as 65534.
func TestEntrypointAndUser(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "pause")
	if err := os.WriteFile(b, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(v1.Platform{OS: "linux", Architecture: "amd64"}, []string{b}, nil, "", imageConfig{entrypoint: "pause"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/pause" {
		t.Errorf("entrypoint %q, want /usr/local/bin/pause", got)
	}
	if cf.Config.User != "" {
		t.Errorf("user %q, want the image default (root)", cf.Config.User)
	}
}
