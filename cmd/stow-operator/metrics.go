package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowlisters "github.com/stowhq/stow/client/listers/stow/v1beta1"
	"github.com/stowhq/stow/pkg/metrics"
)

// sessionListers lets the sessions-by-phase collector read the informer
// caches once the controllers (which only run on the leader) have them;
// until then it reports nothing.
type sessionListers struct {
	backup  atomic.Pointer[stowlisters.BackupSessionLister]
	restore atomic.Pointer[stowlisters.RestoreSessionLister]
}

func (l *sessionListers) set(b stowlisters.BackupSessionLister, r stowlisters.RestoreSessionLister) {
	l.backup.Store(&b)
	l.restore.Store(&r)
}

func (l *sessionListers) collector() prometheus.Collector {
	return metrics.NewSessionCollector(
		func() ([]*v1beta1.BackupSession, error) {
			if p := l.backup.Load(); p != nil {
				return (*p).List(labels.Everything())
			}
			return nil, nil
		},
		func() ([]*v1beta1.RestoreSession, error) {
			if p := l.restore.Load(); p != nil {
				return (*p).List(labels.Everything())
			}
			return nil, nil
		})
}

// startMetrics binds the embedded Pushgateway (which also serves the
// operator's own metrics and the lock-holder endpoint Jobs ask) and serves it
// until ctx is done, on every replica. Only the operator pushes, over
// loopback (the server refuses pushes from elsewhere): it returns the pusher
// the controllers use, the external --pushgateway-url if set, else this
// process's own server.
func startMetrics(ctx context.Context, o options, sessions *sessionListers, extra map[string]http.Handler, errs chan<- error) (metrics.SessionPusher, error) {
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("embedded pushgateway push token: %v", err)
	}
	srv, err := metrics.NewServer(metrics.ServerOptions{
		Address:         o.PushgatewayListen,
		PersistenceFile: o.PersistenceFile,
		Collectors:      []prometheus.Collector{sessions.collector()},
		Extra:           extra,
		PushToken:       hex.EncodeToString(token),
	})
	if err != nil {
		return nil, err
	}
	go func() {
		if err := srv.Run(ctx); err != nil {
			errs <- fmt.Errorf("embedded pushgateway: %w", err)
		}
	}()
	if o.PushgatewayURL != "" {
		return metrics.NewPusher(o.PushgatewayURL), nil
	}
	_, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		return nil, fmt.Errorf("embedded pushgateway address %q: %v", srv.Addr(), err)
	}
	return metrics.NewPusherWithToken("http://127.0.0.1:"+port, hex.EncodeToString(token)), nil
}
