package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/stowhq/stow/pkg/metrics"
)

// serve serves handler on addr until ctx is done, then shuts the server
// down (giving requests in flight 5 s). what names the server in the error
// of a failed listen.
func serve(ctx context.Context, what, addr string, handler http.Handler) error {
	srv := metrics.Limit(&http.Server{Handler: handler})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", what, addr, err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(metrics.LimitListener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s on %s: %w", what, addr, err)
	}
	return nil
}
