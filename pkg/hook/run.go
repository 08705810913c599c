package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Run runs an HTTP or TCP handler (already rendered) within timeout: an
// HTTP hook succeeds on a status from 200 to 399, a TCP hook when the port
// accepts a connection. Errors name the method and host but never the path
// or query, which often hold a token (a Slack webhook URL does).
func Run(ctx context.Context, h v1beta1.Handler, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	switch {
	case h.HTTPGet != nil:
		return runHTTP(ctx, http.MethodGet, *h.HTTPGet, nil, "", "httpGet")
	case h.HTTPPost != nil:
		p := h.HTTPPost
		body, ctype := p.Body, ""
		if len(p.Form) > 0 {
			if p.Body != "" {
				return errors.New("httpPost: set body or form, not both")
			}
			form := url.Values{}
			for _, f := range p.Form {
				for _, v := range f.Values {
					form.Add(f.Key, v)
				}
			}
			body, ctype = form.Encode(), "application/x-www-form-urlencoded"
		}
		return runHTTP(ctx, http.MethodPost, p.HTTPGetAction, strings.NewReader(body), ctype, "httpPost")
	case h.TCPSocket != nil:
		return runTCP(ctx, *h.TCPSocket)
	case h.Exec != nil:
		return errors.New("exec hooks run in the application's pods, not in a hook Job")
	}
	return errors.New("the hook has none of httpGet, httpPost, tcpSocket")
}

func runHTTP(ctx context.Context, method string, a v1beta1.HTTPGetAction, body io.Reader, ctype, what string) error {
	hp, err := v1beta1.HookEndpoint(a.Host, a.Port, what)
	if err != nil {
		return err
	}
	scheme, err := v1beta1.HookScheme(a.Scheme, what)
	if err != nil {
		return err
	}
	path := a.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + hp + path)
	if err != nil {
		return fmt.Errorf("%s: invalid path: %v", what, err)
	}
	shown := fmt.Sprintf("%s %s://%s", method, scheme, hp) // no path: it may hold a token
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s: %v", shown, err)
	}
	req.Header.Set("User-Agent", "stow-hook")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for _, hd := range a.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{
		// 3xx counts as success, as for a Kubernetes probe; nothing is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %v", shown, redactURL(err, u))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	msg := fmt.Sprintf("%s: status %s", shown, resp.Status)
	if s := strings.Join(strings.Fields(string(b)), " "); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// redactURL removes the URL (with its path) from a client error.
func redactURL(err error, u *url.URL) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the hook's timeout"
	}
	return strings.ReplaceAll(err.Error(), u.String(), u.Scheme+"://"+u.Host)
}

func runTCP(ctx context.Context, a corev1.TCPSocketAction) error {
	hp, err := v1beta1.HookEndpoint(a.Host, a.Port, "tcpSocket")
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hp)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("tcpSocket %s: no connection within the hook's timeout", hp)
		}
		return fmt.Errorf("tcpSocket %s: %v", hp, err)
	}
	return conn.Close()
}
