package metrics

import (
	"testing"
)

// The Pushgateway server closes idle and slow connections: any pod of the
// cluster can open them, and idle keep-alive connections used to stay open
// for good, each holding a goroutine and its buffers.
func TestServerClosesIdleConnections(t *testing.T) {
	srv, err := NewServer(ServerOptions{Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.ln.Close()
		_ = srv.store.Shutdown()
		srv.unregister()
	}()
	h := srv.http
	if h.IdleTimeout <= 0 || h.ReadTimeout <= 0 || h.WriteTimeout <= 0 || h.ReadHeaderTimeout <= 0 {
		t.Errorf("timeouts idle %s read %s write %s header %s: every one must be set", h.IdleTimeout, h.ReadTimeout, h.WriteTimeout, h.ReadHeaderTimeout)
	}
}
