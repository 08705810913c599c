// Command mkimage builds the Stow OCI image without Docker: one layer on an
// empty base holding static binaries, a passwd entry for the non-root user, a
// writable /tmp and the host's CA bundle.
//
// One platform, written as a tarball that `ctr images import` and
// `docker load` accept (hack/build-image.sh, the local cluster):
//
//	mkimage -ref docker.io/stowhq/stow:dev -out stow.tar bin/stow-operator bin/stow /path/restic
//
// Several platforms, pushed as one image index to a registry (a release):
//
//	mkimage -ref registry.example/stow:v0.3.0 -push \
//	  -platform linux/amd64=out/linux-amd64 -platform linux/arm64=out/linux-arm64
//
// where each directory holds that platform's binaries (all its regular files
// go into /usr/local/bin). Registry credentials come from the Docker config
// (~/.docker/config.json, $DOCKER_CONFIG), as for `crane` and `docker push`.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const binDir = "usr/local/bin/"

// platformFlag collects repeated -platform OS/ARCH=DIR.
type platformFlag []platformBins

type platformBins struct {
	platform v1.Platform
	bins     []string
}

func (p *platformFlag) String() string { return "" }

func (p *platformFlag) Set(v string) error {
	plat, dir, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want OS/ARCH=DIR, got %q", v)
	}
	pl, err := v1.ParsePlatform(plat)
	if err != nil || pl.OS == "" || pl.Architecture == "" {
		return fmt.Errorf("platform %q: want OS/ARCH such as linux/arm64", plat)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var bins []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			bins = append(bins, filepath.Join(dir, e.Name()))
		}
	}
	if len(bins) == 0 {
		return fmt.Errorf("%s holds no files for %s", dir, plat)
	}
	*p = append(*p, platformBins{platform: *pl, bins: bins})
	return nil
}

type options struct {
	ref       string
	out       string
	push      bool
	insecure  bool
	caBundle  string
	version   string
	image     imageConfig
	platforms platformFlag
}

// imageConfig is what the image runs: its entrypoint (a binary in
// /usr/local/bin) and user.
type imageConfig struct {
	entrypoint string
	user       string
}

// stowImage runs stow as the non-root user of the image's passwd.
var stowImage = imageConfig{entrypoint: "stow", user: "65534:65534"}

func main() {
	var o options
	flag.StringVar(&o.ref, "ref", "", "image reference, e.g. docker.io/stowhq/stow:dev")
	flag.StringVar(&o.out, "out", "", "output tarball (one platform only)")
	flag.BoolVar(&o.push, "push", false, "push to the registry of -ref (an image index when there are several -platform)")
	flag.BoolVar(&o.insecure, "insecure", false, "the registry of -ref speaks plain HTTP")
	flag.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include (skipped if absent or empty)")
	flag.StringVar(&o.version, "version", "", "version recorded as the label org.opencontainers.image.version")
	flag.StringVar(&o.image.entrypoint, "entrypoint", stowImage.entrypoint, "name of the binary the image runs")
	flag.StringVar(&o.image.user, "user", stowImage.user, "user the image runs as (empty: root; the local cluster's pause and probe images)")
	flag.Var(&o.platforms, "platform", "OS/ARCH=DIR: the binaries of one platform (repeat for an index); without it, the BINARY arguments are for this machine's platform")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkimage -ref REF (-out FILE.tar | -push) (BINARY... | -platform OS/ARCH=DIR...)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if len(o.platforms) == 0 && flag.NArg() > 0 {
		o.platforms = platformFlag{{platform: v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, bins: flag.Args()}}
	} else if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "mkimage: give binaries either as arguments or with -platform, not both")
		os.Exit(2)
	}
	if o.ref == "" || (o.out == "" && !o.push) || len(o.platforms) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var opts []name.Option
	if o.insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(o.ref, opts...)
	if err != nil {
		return fmt.Errorf("image reference %q: %v", o.ref, err)
	}
	var ca []byte
	if o.caBundle != "" {
		if ca, err = os.ReadFile(o.caBundle); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	images := make([]v1.Image, len(o.platforms))
	for i, p := range o.platforms {
		if images[i], err = buildImage(p.platform, p.bins, ca, o.version, o.image); err != nil {
			return fmt.Errorf("%s: %w", p.platform, err)
		}
	}
	if o.out != "" {
		if len(images) != 1 {
			return fmt.Errorf("-out writes one platform; push an index of %d with -push", len(images))
		}
		tag, ok := ref.(name.Tag)
		if !ok {
			return fmt.Errorf("-out needs a tag, not %s", ref)
		}
		if err := tarball.WriteToFile(o.out, tag, images[0]); err != nil {
			return err
		}
		d, _ := images[0].Digest()
		fmt.Printf("wrote %s (%s) as %s\n", o.out, d, tag)
	}
	if o.push {
		d, err := push(ref, o.platforms, images, remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			return err
		}
		fmt.Printf("pushed %s@%s\n", ref.Context(), d)
	}
	return nil
}

// push writes one image, or an index of them by platform, to ref.
func push(ref name.Reference, platforms platformFlag, images []v1.Image, opts ...remote.Option) (v1.Hash, error) {
	if len(images) == 1 {
		if err := remote.Write(ref, images[0], opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
		}
		return images[0].Digest()
	}
	idx, err := index(platforms, images)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}

// index is an OCI image index of images, each under its platform.
func index(platforms platformFlag, images []v1.Image) (v1.ImageIndex, error) {
	seen := map[string]bool{}
	adds := make([]mutate.IndexAddendum, len(images))
	for i, img := range images {
		p := platforms[i].platform
		if seen[p.String()] {
			return nil, fmt.Errorf("platform %s given twice", p)
		}
		seen[p.String()] = true
		adds[i] = mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}}
	}
	// A Docker manifest list, like the Docker schema 2 images it lists
	// (empty.Image's media types, which `ctr import` and every registry take).
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.DockerManifestList), nil
}

// buildImage is the image of one platform: a single layer, reproducible
// (every time is the epoch) so that rebuilding unchanged binaries yields the
// same digest.
func buildImage(platform v1.Platform, bins []string, ca []byte, version string, ic imageConfig) (v1.Image, error) {
	layer, err := rootLayer(bins, ca)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Env = []string{"PATH=/usr/local/bin:/bin", "HOME=/tmp", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.User = ic.user
	cf.Config.Entrypoint = []string{"/" + binDir + ic.entrypoint}
	if version != "" {
		cf.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	}
	epoch := time.Unix(0, 0)
	cf.Created = v1.Time{Time: epoch}
	return mutate.ConfigFile(img, cf)
}

func rootLayer(bins []string, ca []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(n string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: mode, ModTime: epoch})
	}
	file := func(n string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/", "usr/", "usr/local/", binDir, "bin/"} {
		if err := dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	// /tmp is world-writable: restic's TMPDIR and cache fall back to it.
	if err := dir("tmp/", 0o1777); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return nil, err
	}
	if ca != nil {
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, ca); err != nil {
			return nil, err
		}
	}
	// Sorted: the layer, and so the digest, must not depend on the order
	// the binaries were given in.
	bins = append([]string(nil), bins...)
	sort.Slice(bins, func(i, j int) bool { return filepath.Base(bins[i]) < filepath.Base(bins[j]) })
	for _, b := range bins {
		data, err := os.ReadFile(b)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(b)
		if err := file(binDir+base, 0o755, data); err != nil {
			return nil, err
		}
		// Stash's image had /bin/restic; keep that path working too.
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + base, Linkname: "/" + binDir + base, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
