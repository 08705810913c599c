package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stowhq/stow/bench/internal/results"
)

// growChunk is the size of each other host's snapshot that grows the
// repository.
const growChunk = 512 << 20

// repositoryGrowth is part growth: the overhead part's 1%-change backup
// session, BENCH_CP_GROWTH_RUNS times at each repository size of
// BENCH_CP_GROWTH_GIB. Between sizes, bare restic on the host adds other
// hosts' snapshots of random data to the Repository's own directory.
func (h *harness) repositoryGrowth(ctx context.Context) error {
	ns, cleanup, err := h.namespace(ctx, "growth")
	if err != nil {
		return err
	}
	defer cleanup()
	e, err := h.newSessionEnv(ctx, ns)
	if err != nil {
		return err
	}
	set := newFileSet(e.dataDir, h.cfg.dataFiles, h.cfg.dataBytes)
	logf("growth: writing %d files, %.0f MiB into %s", set.files(), float64(set.bytes())/(1<<20), e.dataDir)
	if err := set.write(); err != nil {
		return err
	}
	if err := h.firstBackups(ctx, e, set); err != nil {
		return err
	}
	grower := h.bare(e, e.stowRepo)
	grower.cache = filepath.Join(e.repoDir, "grow-cache")
	defer os.RemoveAll(grower.cache)
	hosts := 0
	var points []results.GrowthPoint
	for _, target := range h.cfg.growthBytes {
		size, _, err := repoSize(e.stowRepo)
		if err != nil {
			return err
		}
		for size < target {
			hosts++
			n := min(int64(growChunk), target-size)
			if err := grower.grow(ctx, fmt.Sprintf("other-%03d", hosts), n, uint64(hosts)); err != nil {
				return err
			}
			if size, _, err = repoSize(e.stowRepo); err != nil {
				return err
			}
		}
		// restic ran as root here; the Jobs run as nobody.
		if err := chownTree(e.stowRepo, nobody, nobody); err != nil {
			return err
		}
		size, snaps, err := repoSize(e.stowRepo)
		if err != nil {
			return err
		}
		p := results.GrowthPoint{RepoBytes: size, Snapshots: snaps}
		for range h.cfg.growthRuns {
			e.version++
			if err := set.change(e.version); err != nil {
				return err
			}
			syscall.Sync() // the change written back, as in the overhead part
			t, err := h.backup(ctx, e)
			if err != nil {
				return err
			}
			if !t.ok {
				p.Failed++
				continue
			}
			p.SessionS = append(p.SessionS, t.total.Seconds())
			p.StepS = append(p.StepS, t.step.Seconds())
			p.Stages = addStages(p.Stages, t.stages)
		}
		logf("growth: repository %.0f MiB, %d snapshots: session p50 %.2fs (step %.2fs), %d failed", float64(size)/(1<<20), snaps,
			results.Summarize(p.SessionS).Median, results.Summarize(p.StepS).Median, p.Failed)
		points = append(points, p)
	}
	h.cp.Growth = points
	return nil
}
