package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// genVersion changes whenever generation changes, so a cached data set made
// by an older harness is regenerated instead of silently reused.
const genVersion = 1

// bigBlock is the unit of the single-file set: each block is generated (and
// changed) independently, so a change can be reverted without rewriting the file.
const bigBlock = 1 << 20

// setSpec describes one deterministic data set.
type setSpec struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        string `json:"kind"` // "files" or "big"
	Files       int    `json:"files"`
	Bytes       int64  `json:"bytes"`
	PerDir      int    `json:"perDir"`
	// MinSize and MaxSize bound the file sizes (log-uniform, then scaled
	// so they add up to Bytes) for Kind "files".
	MinSize int64  `json:"minSize"`
	MaxSize int64  `json:"maxSize"`
	Seed    uint64 `json:"seed"`
	Version int    `json:"genVersion"`
}

const seed = 20261125

// specs returns the data sets of a scale: "full" is the issue's, "small" a
// few MB for a quick check of the harness itself.
func specs(scale string) ([]setSpec, error) {
	var mixed, big, tiny setSpec
	switch scale {
	case "full":
		mixed = setSpec{Files: 50_000, Bytes: 2 << 30}
		big = setSpec{Files: 1, Bytes: 2 << 30}
		tiny = setSpec{Files: 500_000, Bytes: 500_000 * 512}
	case "small":
		mixed = setSpec{Files: 300, Bytes: 6 << 20}
		big = setSpec{Files: 1, Bytes: 8 << 20}
		tiny = setSpec{Files: 3_000, Bytes: 3_000 * 512}
	default:
		return nil, fmt.Errorf("BENCH_SCALE=%q: want small or full", scale)
	}
	mixed.Name, mixed.Kind, mixed.PerDir, mixed.MinSize, mixed.MaxSize = "mixed", "files", 100, 512, 1<<20
	mixed.Description = "many small files, sizes log-uniform, half random bytes, half compressible text"
	big.Name, big.Kind = "big", "big"
	big.Description = "one file of random bytes"
	tiny.Name, tiny.Kind, tiny.PerDir, tiny.MinSize, tiny.MaxSize = "tiny", "files", 500, 1, 1023
	tiny.Description = "tiny files (1 B - 1 KiB), half random, half text"
	out := []setSpec{mixed, big, tiny}
	for i := range out {
		out[i].Seed, out[i].Version = seed, genVersion
	}
	return out, nil
}

// dataSet is a generated set on disk.
type dataSet struct {
	spec  setSpec
	dir   string
	stamp string // written when dir holds exactly the pristine set
	sizes []int64
}

func newDataSet(spec setSpec, root string) *dataSet {
	return &dataSet{spec: spec, dir: filepath.Join(root, spec.Name), stamp: filepath.Join(root, spec.Name+".stamp"), sizes: fileSizes(spec)}
}

// fileSizes draws the sizes of a "files" set from its seed.
func fileSizes(s setSpec) []int64 {
	if s.Kind == "big" {
		return []int64{s.Bytes}
	}
	rng := rand.New(rand.NewPCG(s.Seed, 1))
	raw := make([]float64, s.Files)
	var sum float64
	lo, hi := math.Log(float64(s.MinSize)), math.Log(float64(s.MaxSize))
	for i := range raw {
		raw[i] = math.Exp(lo + rng.Float64()*(hi-lo))
		sum += raw[i]
	}
	sizes := make([]int64, s.Files)
	var total int64
	for i := range raw {
		sizes[i] = int64(raw[i] * float64(s.Bytes) / sum)
		total += sizes[i]
	}
	sizes[len(sizes)-1] += s.Bytes - total // exact total
	return sizes
}

func (d *dataSet) path(i int) string {
	if d.spec.Kind == "big" {
		return filepath.Join(d.dir, "big.bin")
	}
	ext := ".bin"
	if i%2 == 1 {
		ext = ".txt"
	}
	return filepath.Join(d.dir, fmt.Sprintf("d%04d", i/d.spec.PerDir), fmt.Sprintf("f%06d%s", i, ext))
}

// ensure generates the set unless the stamp says it is already there.
func (d *dataSet) ensure() (generated bool, err error) {
	want, _ := json.Marshal(d.spec)
	if have, err := os.ReadFile(d.stamp); err == nil && string(have) == string(want) {
		return false, nil
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return false, err
	}
	if d.spec.Kind == "big" {
		if err := d.writeBig(0, nil); err != nil {
			return false, err
		}
	} else {
		for i := range d.sizes {
			if err := d.writeFile(i, 0); err != nil {
				return false, err
			}
		}
	}
	return true, os.WriteFile(d.stamp, want, 0o644)
}

// changed lists what a 1% change touches: every 100th file or big-file
// block, starting with the first (so a small set changes something too).
func (d *dataSet) changed() []int {
	n := len(d.sizes)
	if d.spec.Kind == "big" {
		n = int((d.spec.Bytes + bigBlock - 1) / bigBlock)
	}
	var out []int
	for i := 0; i < n; i += 100 {
		out = append(out, i)
	}
	return out
}

// setVersion rewrites the changed files (or blocks) with version v: 1 is
// the 1% change, 0 reverts to the pristine set. The stamp is removed while
// the set is not pristine, so an interrupted run regenerates it.
func (d *dataSet) setVersion(v int) error {
	if v != 0 {
		if err := os.Remove(d.stamp); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if d.spec.Kind == "big" {
		if err := d.writeBig(v, d.changed()); err != nil {
			return err
		}
	} else {
		for _, i := range d.changed() {
			if err := d.writeFile(i, v); err != nil {
				return err
			}
		}
	}
	if v == 0 {
		want, _ := json.Marshal(d.spec)
		return os.WriteFile(d.stamp, want, 0o644)
	}
	return nil
}

// writeBig writes the big file: every block (blocks nil) or only blocks.
func (d *dataSet) writeBig(v int, blocks []int) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path(0), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if blocks == nil {
		for b := int64(0); b*bigBlock < d.spec.Bytes; b++ {
			blocks = append(blocks, int(b))
		}
	}
	for _, b := range blocks {
		off := int64(b) * bigBlock
		n := min(bigBlock, d.spec.Bytes-off)
		w := bufio.NewWriterSize(io.NewOffsetWriter(f, off), 256<<10)
		if err := fillRandom(w, d.contentSeed(b, v), n); err != nil {
			f.Close()
			return err
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func (d *dataSet) writeFile(i, v int) error {
	p := d.path(i)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	if i%2 == 0 {
		err = fillRandom(w, d.contentSeed(i, v), d.sizes[i])
	} else {
		err = fillText(w, d.contentSeed(i, v), d.sizes[i])
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// contentSeed is the seed of one file or block at one version.
func (d *dataSet) contentSeed(i, v int) [32]byte {
	var b [8 + 8 + 8]byte
	binary.LittleEndian.PutUint64(b[0:], d.spec.Seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(i))
	binary.LittleEndian.PutUint64(b[16:], uint64(v))
	return sha256.Sum256(append([]byte(d.spec.Name+"\x00"), b[:]...))
}

func fillRandom(w io.Writer, seed [32]byte, n int64) error {
	_, err := io.CopyN(w, rand.NewChaCha8(seed), n)
	return err
}

// words make compressible text: zstd shrinks it several times, like logs
// or source code would.
var words = [64]string{
	"the", "of", "backup", "volume", "restore", "snapshot", "claim", "session", "repository", "restic",
	"stow", "kubernetes", "operator", "pod", "job", "cron", "schedule", "retention", "policy", "prune",
	"data", "file", "directory", "block", "chunk", "pack", "index", "tree", "blob", "lock",
	"error", "warning", "info", "debug", "request", "response", "status", "phase", "running", "succeeded",
	"failed", "pending", "timeout", "deadline", "metric", "counter", "gauge", "histogram", "label", "value",
	"alpha", "beta", "gamma", "delta", "0", "1", "2", "3", "42", "1024",
	"2026-11-25T10:30:00Z", "user=65534", "size=4096", "ok",
}

func fillText(w io.Writer, seed [32]byte, n int64) error {
	src := rand.NewChaCha8(seed)
	buf := make([]byte, 0, 64<<10)
	var rnd [512]byte
	for n > 0 {
		buf = buf[:0]
		_, _ = src.Read(rnd[:])
		for j, r := range rnd {
			buf = append(buf, words[r&63]...)
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
