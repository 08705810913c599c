package main

import (
	"context"
	"net/http"
	"net/http/pprof"
)

// serveProfiling serves Go's runtime profiles (/debug/pprof/) on addr, for
// measuring where the operator spends its time and memory
// (docs/performance.md). Off by default: profiles show object names and
// cost CPU while taken, so only an operator's admin turns it on
// (--profiling-address), and then on a port no Service exposes.
func serveProfiling(ctx context.Context, addr string) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serve(ctx, "profiling", addr, mux)
}
