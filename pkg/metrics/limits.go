package metrics

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// MaxConnections caps the connections each operator HTTP server holds at
// once: Prometheus, the Jobs' lock-holder questions and probes need a few.
const MaxConnections = 256

// Limit sets the timeouts of an operator HTTP server. Any pod of the
// cluster can reach these servers: without the timeouts an idle keep-alive
// connection stayed open for good, each with a goroutine and its buffers,
// so a pod opening thousands of them ran the operator out of memory or
// file descriptors, and no backup ran anywhere.
func Limit(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = 10 * time.Second
	srv.ReadTimeout = time.Minute // a push is at most 16 MiB
	srv.WriteTimeout = 2 * time.Minute
	srv.IdleTimeout = time.Minute
	return srv
}

// LimitListener accepts at most MaxConnections connections at once.
func LimitListener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, MaxConnections) }
