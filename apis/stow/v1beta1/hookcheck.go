package v1beta1

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// HookEndpoint is the host:port a network hook calls. A hook runs in a Job
// pod of its own, so it must name the host, and a named port (which pod's?)
// means nothing. what names the action in errors ("httpGet", ...).
func HookEndpoint(host string, p intstr.IntOrString, what string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%s.host is required: the hook runs in a pod of its own, so it must name the service it calls", what)
	}
	n := p.IntValue()
	if p.Type == intstr.String {
		var err error
		if n, err = strconv.Atoi(p.StrVal); err != nil {
			return "", fmt.Errorf("%s.port %q: a hook needs a port number (a named port belongs to a pod, and a hook runs in a pod of its own)", what, p.StrVal)
		}
	}
	if n < 1 || n > 65535 {
		return "", fmt.Errorf("%s.port %d is not between 1 and 65535", what, n)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// HookScheme is the lower-case URL scheme of an HTTP hook: http (the
// default) or https.
func HookScheme(s corev1.URIScheme, what string) (string, error) {
	switch scheme := strings.ToLower(string(s)); scheme {
	case "":
		return "http", nil
	case "http", "https":
		return scheme, nil
	}
	return "", fmt.Errorf("%s.scheme %q: use HTTP or HTTPS", what, s)
}

// validateHook refuses a network hook that could never run, with the
// words the hook Job would fail with in every session (pkg/hook checks the
// same when it runs). A value left to rendering (holding "${" or "{{") is
// judged only when the hook runs.
func validateHook(h *Handler, p *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	rendered := func(s string) bool { return strings.Contains(s, "${") || strings.Contains(s, "{{") }
	var errs field.ErrorList
	endpoint := func(what, host string, port intstr.IntOrString) {
		if rendered(host) || (port.Type == intstr.String && rendered(port.StrVal)) {
			return
		}
		if _, err := HookEndpoint(host, port, what); err != nil {
			errs = append(errs, field.Invalid(p.Child(what), "", err.Error()))
		}
	}
	http := func(what string, a HTTPGetAction) {
		endpoint(what, a.Host, a.Port)
		if _, err := HookScheme(a.Scheme, what); err != nil && !rendered(string(a.Scheme)) {
			errs = append(errs, field.Invalid(p.Child(what, "scheme"), a.Scheme, err.Error()))
		}
	}
	switch {
	case h.HTTPGet != nil:
		http("httpGet", *h.HTTPGet)
	case h.HTTPPost != nil:
		http("httpPost", h.HTTPPost.HTTPGetAction)
		if h.HTTPPost.Body != "" && len(h.HTTPPost.Form) > 0 {
			errs = append(errs, field.Invalid(p.Child("httpPost"), "", "set body or form, not both"))
		}
	case h.TCPSocket != nil:
		endpoint("tcpSocket", h.TCPSocket.Host, h.TCPSocket.Port)
	}
	return errs
}

// validateHooks checks the network hooks of a configuration or restore.
func validateHooks(p *field.Path, pre *Handler, post *PostHookHandler, preName, postName string) field.ErrorList {
	errs := validateHook(pre, p.Child(preName))
	if post != nil {
		errs = append(errs, validateHook(&post.Handler, p.Child(postName))...)
	}
	return errs
}
