package main

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// treeHash hashes every file's relative path and content.
func treeHash(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func testSpecs(t *testing.T) []setSpec {
	s, err := specs("small")
	if err != nil {
		t.Fatal(err)
	}
	for i := range s { // smaller still: the test only checks behaviour
		s[i].Bytes /= 4
		if s[i].Files > 1 {
			s[i].Files /= 4
		}
	}
	return s
}

func TestGenerationIsDeterministicAndRevertible(t *testing.T) {
	for _, spec := range testSpecs(t) {
		t.Run(spec.Name, func(t *testing.T) {
			a, b := newDataSet(spec, t.TempDir()), newDataSet(spec, t.TempDir())
			for _, d := range []*dataSet{a, b} {
				if gen, err := d.ensure(); err != nil || !gen {
					t.Fatalf("ensure = %v, %v; want generated", gen, err)
				}
			}
			pristine := treeHash(t, a.dir)
			if treeHash(t, b.dir) != pristine {
				t.Fatal("two generations of the same spec differ")
			}
			size, err := dirSize(a.dir)
			if err != nil || size != spec.Bytes {
				t.Fatalf("set holds %d bytes (%v), want %d", size, err, spec.Bytes)
			}
			if gen, err := a.ensure(); err != nil || gen {
				t.Fatalf("second ensure = %v, %v; want reuse", gen, err)
			}
			if err := a.setVersion(1); err != nil {
				t.Fatal(err)
			}
			if treeHash(t, a.dir) == pristine {
				t.Fatal("the 1% change changed nothing")
			}
			if _, err := os.Stat(a.stamp); !os.IsNotExist(err) {
				t.Fatalf("stamp still there while the set is changed: %v", err)
			}
			if size, _ := dirSize(a.dir); size != spec.Bytes {
				t.Fatalf("change altered the size to %d", size)
			}
			if err := a.setVersion(0); err != nil {
				t.Fatal(err)
			}
			if treeHash(t, a.dir) != pristine {
				t.Fatal("reverting the change did not restore the set")
			}
			if err := sameTree(a.dir, b.dir); err != nil {
				t.Fatalf("sameTree on equal trees: %v", err)
			}
		})
	}
}

func TestChangedIsOnePercent(t *testing.T) {
	full, err := specs("full")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range full {
		d := &dataSet{spec: s, sizes: make([]int64, s.Files)}
		if s.Kind == "big" {
			d.sizes = []int64{s.Bytes}
		}
		n := len(d.changed())
		units := s.Files
		if s.Kind == "big" {
			units = int(s.Bytes / bigBlock)
		}
		if n*100 < units || n*100 > units+100 {
			t.Errorf("set %s: %d of %d units change, want 1%%", s.Name, n, units)
		}
	}
}

func TestFileSizesAddUp(t *testing.T) {
	full, _ := specs("full")
	for _, s := range full {
		var sum int64
		for _, n := range fileSizes(s) {
			if n < 0 {
				t.Fatalf("set %s: negative size", s.Name)
			}
			sum += n
		}
		if sum != s.Bytes {
			t.Errorf("set %s: sizes add up to %d, want %d", s.Name, sum, s.Bytes)
		}
	}
}

func TestSameTreeFindsDifferences(t *testing.T) {
	want, got := t.TempDir(), t.TempDir()
	for _, d := range []string{want, got} {
		if err := os.WriteFile(filepath.Join(d, "a"), []byte("same"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sameTree(want, got); err != nil {
		t.Fatalf("equal trees: %v", err)
	}
	os.WriteFile(filepath.Join(got, "extra"), nil, 0o644)
	if sameTree(want, got) == nil {
		t.Error("extra restored file not reported")
	}
	os.Remove(filepath.Join(got, "extra"))
	os.WriteFile(filepath.Join(got, "a"), []byte("diff"), 0o644)
	if sameTree(want, got) == nil {
		t.Error("changed content not reported")
	}
	os.Remove(filepath.Join(got, "a"))
	if sameTree(want, got) == nil {
		t.Error("missing file not reported")
	}
}

func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(filepath.Join(src, "keys", "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "keys", "k"), []byte("key"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := sameTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "keys", "empty")); err != nil || !fi.IsDir() {
		t.Fatalf("empty directory not copied: %v", err)
	}
}
