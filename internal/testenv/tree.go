package testenv

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TreeDiff compares two directory trees: the same relative paths, types,
// permission bits, file bytes and symlink targets. It returns the
// differences, at most 20.
func TreeDiff(want, got string) ([]string, error) {
	a, err := readTree(want)
	if err != nil {
		return nil, err
	}
	b, err := readTree(got)
	if err != nil {
		return nil, err
	}
	var diffs []string
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		x, okA := a[n]
		y, okB := b[n]
		switch {
		case !okA:
			diffs = append(diffs, "unexpected "+n)
		case !okB:
			diffs = append(diffs, "missing "+n)
		case x.mode != y.mode:
			diffs = append(diffs, fmt.Sprintf("%s: mode %v, want %v", n, y.mode, x.mode))
		case !bytes.Equal(x.data, y.data):
			diffs = append(diffs, fmt.Sprintf("%s: content differs (%d bytes, want %d)", n, len(y.data), len(x.data)))
		}
		if len(diffs) == 20 {
			break
		}
	}
	return diffs, nil
}

// RequireSameTree fails the test unless TreeDiff finds no difference.
func RequireSameTree(t testing.TB, want, got string) {
	t.Helper()
	diffs, err := TreeDiff(want, got)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
	if len(diffs) > 0 {
		t.FailNow()
	}
}

type entry struct {
	mode fs.FileMode
	data []byte
}

func readTree(root string) (map[string]entry, error) {
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode() & (fs.ModeType | fs.ModePerm)}
		switch {
		case fi.Mode().IsRegular():
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.data = []byte(t)
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// WriteFile writes a file (creating parents) with the given mode, failing the test on error.
func WriteFile(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

// RandomBytes returns n pseudo-random bytes from seed: incompressible and
// reproducible test data.
func RandomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}
