// Command mkimage builds the Stow OCI image without Docker or a registry: one
// layer on an empty base holding static binaries, a passwd entry for the
// non-root user, a writable /tmp and the host's CA bundle, written as a
// tarball that `ctr images import` and `docker load` accept.
//
//	mkimage -ref docker.io/stowhq/stow:dev -out stow.tar bin/stow-operator bin/stow /path/restic
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const binDir = "usr/local/bin/"

func main() {
	ref := flag.String("ref", "", "image reference, e.g. docker.io/stowhq/stow:dev")
	out := flag.String("out", "", "output tarball")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include (skipped if absent)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkimage -ref REF -out FILE.tar BINARY...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *ref == "" || *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(*ref, *out, *caBundle, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func build(ref, out, caBundle string, bins []string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %v", ref, err)
	}
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
			return err
		}
	}
	// /tmp is world-writable: restic's TMPDIR and cache fall back to it.
	if err := dir("tmp/", 0o1777); err != nil {
		return err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/sbin/nologin\n")); err != nil {
		return err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return err
	}
	if ca, err := os.ReadFile(caBundle); err == nil {
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, ca); err != nil {
			return err
		}
	}
	for _, b := range bins {
		data, err := os.ReadFile(b)
		if err != nil {
			return err
		}
		base := filepath.Base(b)
		if err := file(binDir+base, 0o755, data); err != nil {
			return err
		}
		// Stash's image had /bin/restic; keep that path working too.
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + base, Linkname: "/" + binDir + base, ModTime: epoch}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/bin", "HOME=/tmp", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.User = "65534:65534"
	cf.Config.Entrypoint = []string{"/" + binDir + "stow"}
	cf.Created = v1.Time{Time: epoch}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("wrote %s (%s) as %s\n", out, d, tag)
	return nil
}
