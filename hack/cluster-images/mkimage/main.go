// mkimage builds a single-layer image tarball (docker-archive format, importable with
// `ctr images import`) from one static binary. No registry, no Docker.
//
//	mkimage -bin ./pause -ref registry.k8s.io/pause:3.10 -out pause.tar [-path /pause]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	bin := flag.String("bin", "", "static binary to put in the image")
	ref := flag.String("ref", "", "image reference, e.g. localhost/probe:dev")
	out := flag.String("out", "", "output tarball")
	path := flag.String("path", "", "path of the binary inside the image (default /<basename>)")
	flag.Parse()
	if *bin == "" || *ref == "" || *out == "" {
		log.Fatal("need -bin -ref -out")
	}
	data, err := os.ReadFile(*bin)
	if err != nil {
		log.Fatal(err)
	}
	p := *path
	if p == "" {
		p = "/" + filepath.Base(*bin)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	// a writable /tmp and a /data mount point
	for _, d := range []string{"tmp/", "data/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 01777, ModTime: epoch}); err != nil {
			log.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: 0o755, Size: int64(len(data)), ModTime: epoch}); err != nil {
		log.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		log.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		log.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		log.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{p}
	cf.Config.Env = []string{"PATH=/"}
	cf.Created = v1.Time{Time: epoch}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	tag, err := name.NewTag(*ref)
	if err != nil {
		log.Fatal(err)
	}
	if err := tarball.WriteToFile(*out, tag, img); err != nil {
		log.Fatal(err)
	}
	d, _ := img.Digest()
	log.Printf("wrote %s (%s) as %s", *out, d, tag)
}
