package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// fileSet is a fixed-seed set of files that the harness writes straight
// into a PVC's directory on the cluster's host (the local cluster's volumes
// are host directories): sizes log-uniform between 512 B and 1 MiB, scaled
// to add up to bytes exactly, half random bytes and half compressible text,
// 100 files per directory. It follows bench/datapath's "mixed" set, smaller
// (bench/datapath is a command, so its generator cannot be imported).
type fileSet struct {
	dir   string
	seed  uint64
	sizes []int64
}

const (
	fileSetSeed   = 20261203
	fileSetPerDir = 100
	// changeEvery: a 1% change rewrites every 100th file.
	changeEvery = 100
)

func newFileSet(dir string, files int, bytes int64) *fileSet {
	rng := rand.New(rand.NewPCG(fileSetSeed, 1))
	raw := make([]float64, files)
	var sum float64
	lo, hi := math.Log(512), math.Log(1<<20)
	for i := range raw {
		raw[i] = math.Exp(lo + rng.Float64()*(hi-lo))
		sum += raw[i]
	}
	sizes := make([]int64, files)
	var total int64
	for i := range raw {
		sizes[i] = int64(raw[i] * float64(bytes) / sum)
		total += sizes[i]
	}
	sizes[len(sizes)-1] += bytes - total
	return &fileSet{dir: dir, seed: fileSetSeed, sizes: sizes}
}

func (f *fileSet) files() int { return len(f.sizes) }

func (f *fileSet) bytes() int64 {
	var n int64
	for _, s := range f.sizes {
		n += s
	}
	return n
}

func (f *fileSet) path(i int) string {
	ext := ".bin"
	if i%2 == 1 {
		ext = ".txt"
	}
	return filepath.Join(f.dir, fmt.Sprintf("d%03d", i/fileSetPerDir), fmt.Sprintf("f%05d%s", i, ext))
}

// write writes every file at version 0.
func (f *fileSet) write() error {
	for i := range f.sizes {
		if err := f.writeFile(i, 0); err != nil {
			return err
		}
	}
	return nil
}

// change rewrites 1% of the files (every 100th) with version v (> 0): their
// contents change entirely, their sizes stay.
func (f *fileSet) change(v int) error {
	for i := 0; i < len(f.sizes); i += changeEvery {
		if err := f.writeFile(i, v); err != nil {
			return err
		}
	}
	return nil
}

func (f *fileSet) writeFile(i, v int) error {
	p := f.path(i)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	out, err := os.Create(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 256<<10)
	var b [3 * 8]byte
	binary.LittleEndian.PutUint64(b[0:], f.seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	binary.LittleEndian.PutUint64(b[16:], uint64(v))
	seed := sha256.Sum256(b[:])
	if i%2 == 0 {
		_, err = io.CopyN(w, rand.NewChaCha8(seed), f.sizes[i])
	} else {
		err = fillText(w, seed, f.sizes[i])
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

var words = [16]string{"backup", "volume", "restore", "snapshot", "claim", "session", "repository", "restic",
	"stow", "pod", "job", "error", "info", "status", "2026-12-03T10:30:00Z", "size=4096"}

// fillText writes n bytes of word salad: zstd shrinks it several times, as
// it would logs.
func fillText(w io.Writer, seed [32]byte, n int64) error {
	src := rand.NewChaCha8(seed)
	var rnd [512]byte
	buf := make([]byte, 0, 8<<10)
	for n > 0 {
		buf = buf[:0]
		_, _ = src.Read(rnd[:])
		for j, r := range rnd {
			buf = append(buf, words[r&15]...)
			if j%13 == 12 {
				buf = append(buf, '\n')
			} else {
				buf = append(buf, ' ')
			}
		}
		k := min(int64(len(buf)), n)
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// tally counts the regular files under dir and their bytes.
func tally(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}

// readAll reads every regular file under dir (into the page cache).
func readAll(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
}

// emptyDir removes everything inside dir, keeping dir itself (a volume's
// root, which the kubelet mounted).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
