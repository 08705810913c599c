package main

import (
	"context"

	"github.com/stowhq/stow/pkg/metrics"
)

// metricsOptions is what the metrics servers need from the flags.
type metricsOptions struct {
	MetricsAddress    string // operator metrics (/metrics)
	PushgatewayListen string // embedded Pushgateway
	PersistenceFile   string // Pushgateway persistence
}

// startMetrics starts the operator metrics server and the embedded
// Pushgateway, and returns the SessionPusher the controllers use. The servers
// stop when ctx is done.
//
// TODO(lead): wire pkg/metrics here (metrics.NewServer / its SessionPusher);
// this stub serves nothing and pushes nothing.
func startMetrics(ctx context.Context, opts metricsOptions) (metrics.SessionPusher, error) {
	_ = ctx
	_ = opts
	return metrics.Nop{}, nil
}
