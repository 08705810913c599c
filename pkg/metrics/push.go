package metrics

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"

	"github.com/stowhq/stow/pkg/names"
)

// pushTimeout bounds one push or delete when the caller's context has no
// deadline: a missing Pushgateway must not hang a Job or a reconcile.
const pushTimeout = 30 * time.Second

var httpClient = &http.Client{Timeout: pushTimeout}

// tokenClient is httpClient sending the push token of the embedded
// Pushgateway (ServerOptions.PushToken).
func tokenClient(token string) *http.Client {
	return &http.Client{Timeout: pushTimeout, Transport: tokenTransport{token: token, next: http.DefaultTransport}}
}

type tokenTransport struct {
	token string
	next  http.RoundTripper
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(PushTokenHeader, t.token)
	return t.next.RoundTrip(r)
}

// add pushes families to the group job=<job> with POST semantics: only the
// families in this push are replaced, the group's other families (such as
// last_success_time after a failure) keep their values. No grouping labels
// besides job are used, so every push of one invoker lands in one group.
func add(ctx context.Context, client *http.Client, gatewayURL, job string, b batch) error {
	if gatewayURL == "" {
		return fmt.Errorf("push metrics: no Pushgateway URL")
	}
	if len(b) == 0 {
		return nil
	}
	mfs := b.families()
	p := push.New(strings.TrimRight(gatewayURL, "/"), job).
		Client(client).
		Gatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil }))
	if err := p.AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics of %s to %s: %w", job, redact(gatewayURL), err)
	}
	return nil
}

// deleteGroup deletes the group job=<job>. A group that does not exist is not
// an error: the Pushgateway answers 202 for it, and a 404 from a proxy or
// another implementation means the same thing.
func deleteGroup(ctx context.Context, client *http.Client, gatewayURL, job string) error {
	if gatewayURL == "" {
		return fmt.Errorf("delete metrics group: no Pushgateway URL")
	}
	u := groupURL(gatewayURL, job)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("delete metrics group %s: %v", job, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("delete metrics group %s at %s: %v", job, redact(gatewayURL), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusNoContent, http.StatusNotFound:
		return nil
	}
	return fmt.Errorf("delete metrics group %s at %s: HTTP %d: %s", job, redact(gatewayURL), resp.StatusCode, strings.TrimSpace(string(body)))
}

// groupURL is <gateway>/metrics/job/<job>, with the job base64-encoded
// (the /job@base64/ form) when it holds a slash, as the push client does.
func groupURL(gatewayURL, job string) string {
	base := strings.TrimRight(gatewayURL, "/") + "/metrics/job"
	if strings.Contains(job, "/") {
		return base + "@base64/" + base64.RawURLEncoding.EncodeToString([]byte(job))
	}
	return base + "/" + url.PathEscape(job)
}

// redact drops user info from a URL before it goes into an error message.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// invokerJob is the Pushgateway job of an invoker.
func invokerJob(kind, namespace, name string) string {
	return names.PushgatewayJob(kind, namespace, name)
}
