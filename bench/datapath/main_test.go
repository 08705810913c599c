package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/bench/internal/results"
)

func TestKeepUnmeasured(t *testing.T) {
	all, err := specs("full")
	if err != nil {
		t.Fatal(err)
	}
	run := func(set, tool string) results.Measurement {
		return results.Measurement{Set: set, Tool: tool, Op: "full", Runs: []results.Run{{WallS: 1}}}
	}
	prev := &results.DataPath{Started: time.Date(2026, 11, 25, 13, 15, 0, 0, time.UTC), Scale: "full", Runs: 3,
		Sets:         []results.Set{{Name: "mixed"}, {Name: "big"}, {Name: "tiny"}},
		Measurements: []results.Measurement{run("mixed", "stow"), run("big", "restic"), run("tiny", "stow"), run("tiny", "stow --pack-size 64")}}
	d := &results.DataPath{Scale: "full", Runs: 3, StowTools: []string{sessionTool.name, cliTool.name},
		Sets: []results.Set{{Name: "big"}}, Measurements: []results.Measurement{run("big", cliTool.name)}}
	keepUnmeasured(d, prev, "f62da0d", all)

	var sets []string
	for _, s := range d.Sets {
		sets = append(sets, s.Name)
	}
	if !slices.Equal(sets, []string{"mixed", "big", "tiny"}) {
		t.Errorf("sets %v, want mixed, big, tiny (spec order)", sets)
	}
	var got []string
	for _, m := range d.Measurements {
		got = append(got, m.Set+"/"+m.Tool)
	}
	want := []string{"big/" + cliTool.name, "mixed/" + cliTool.name, "tiny/" + cliTool.name, "tiny/stow CLI --pack-size 64"}
	if !slices.Equal(got, want) {
		t.Errorf("measurements %q, want %q (big's old ones replaced, old \"stow\" is the CLI)", got, want)
	}
	if len(d.Notes) != 2 || !strings.Contains(d.Notes[0], "set mixed not rerun") || !strings.Contains(d.Notes[1], "2026-11-25 13:15 UTC (3 runs), stow f62da0d") {
		t.Errorf("notes %q", d.Notes)
	}

	// A smoke run, or another scale, keeps nothing.
	small := &results.DataPath{Scale: "small", Sets: []results.Set{{Name: "big"}}}
	keepUnmeasured(small, prev, "f62da0d", all)
	if len(small.Sets) != 1 || len(small.Notes) != 0 {
		t.Errorf("a run at another scale kept %v", small.Sets)
	}
}
