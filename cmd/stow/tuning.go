package main

import (
	"strconv"

	"github.com/spf13/pflag"
)

// resticTuning are the restic performance options `stow backup` passes
// through: the benchmark (bench/datapath) compares settings with them. Each
// flag defaults to an environment variable so a wrapper can set it once.
type resticTuning struct {
	readConcurrency int    // restic backup --read-concurrency (0: restic's default, 2)
	packSizeMiB     int    // restic --pack-size in MiB (0: restic's default, 16)
	compression     string // restic --compression (empty: restic's default, auto)
}

const (
	envReadConcurrency = "STOW_RESTIC_READ_CONCURRENCY"
	envPackSize        = "STOW_RESTIC_PACK_SIZE"
	envCompression     = "STOW_RESTIC_COMPRESSION"
)

func (t *resticTuning) register(fs *pflag.FlagSet) {
	fs.IntVar(&t.readConcurrency, "read-concurrency", 0, "files restic reads in parallel (default $"+envReadConcurrency+", else restic's 2)")
	fs.IntVar(&t.packSizeMiB, "pack-size", 0, "target restic pack size in MiB, 4-128 (default $"+envPackSize+", else restic's 16)")
	fs.StringVar(&t.compression, "compression", "", "restic compression: auto, off, fastest, better or max (default $"+envCompression+", else auto)")
}

// args returns the restic arguments for the settings; a flag left at its zero
// value takes its environment variable. Bad values are a usage error.
func (t resticTuning) args(getenv func(string) string) ([]string, error) {
	rc, err := intSetting(t.readConcurrency, envReadConcurrency, getenv)
	if err != nil {
		return nil, err
	}
	pack, err := intSetting(t.packSizeMiB, envPackSize, getenv)
	if err != nil {
		return nil, err
	}
	comp := t.compression
	if comp == "" {
		comp = getenv(envCompression)
	}
	var a []string
	switch {
	case rc < 0:
		return nil, usageError("--read-concurrency must be positive, got %d", rc)
	case rc > 0:
		a = append(a, "--read-concurrency", strconv.Itoa(rc))
	}
	switch {
	case pack == 0:
	case pack < 4 || pack > 128:
		return nil, usageError("--pack-size must be between 4 and 128 MiB, got %d", pack)
	default:
		a = append(a, "--pack-size", strconv.Itoa(pack))
	}
	switch comp {
	case "":
	case "auto", "off", "fastest", "better", "max":
		a = append(a, "--compression", comp)
	default:
		return nil, usageError("--compression must be auto, off, fastest, better or max, got %q", comp)
	}
	return a, nil
}

func intSetting(flag int, env string, getenv func(string) string) (int, error) {
	if flag != 0 {
		return flag, nil
	}
	s := getenv(env)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, usageError("%s=%q is not a number", env, s)
	}
	return n, nil
}
