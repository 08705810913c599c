// probe is the test image used by `hack/local-cluster.sh smoke`.
//
//	probe serve [-addr :8080]          serve "stow-probe-ok <hostname>" over HTTP
//	probe check -url http://IP:PORT/   from inside a pod:
//	    (a) HTTPS GET https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/version with the
//	        pod's service-account token and CA;
//	    (b) HTTP GET -url (a ClusterIP Service backed by a `probe serve` pod);
//	    (c) optional: -dns NAME must resolve (cluster DNS), -out DIR must be writable (PV).
//	    Exits non-zero if any check fails. Retries are bounded (-timeout).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe serve|check [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "check":
		os.Exit(check(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":8080", "listen address")
	_ = fs.Parse(args)
	h, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "stow-probe-ok %s\n", h)
	})
	fmt.Println("serving on", *addr)
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// retry runs f every second until it succeeds or the deadline passes.
func retry(name string, timeout time.Duration, f func() (string, error)) bool {
	deadline := time.Now().Add(timeout)
	for attempt := 1; ; attempt++ {
		msg, err := f()
		if err == nil {
			fmt.Printf("PASS %s: %s\n", name, msg)
			return true
		}
		if time.Now().After(deadline) {
			fmt.Printf("FAIL %s: %v (after %d attempts)\n", name, err, attempt)
			return false
		}
		time.Sleep(time.Second)
	}
}

func check(args []string) int {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	url := fs.String("url", "", "URL of a ClusterIP Service backed by `probe serve`")
	dns := fs.String("dns", "", "optional: a name that must resolve")
	out := fs.String("out", "", "optional: a directory (PV mount) that must be writable")
	timeout := fs.Duration("timeout", 60*time.Second, "per-check retry budget")
	_ = fs.Parse(args)
	ok := true
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())

	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	ok = retry("apiserver via in-cluster config", *timeout, func() (string, error) {
		if host == "" || port == "" {
			return "", fmt.Errorf("KUBERNETES_SERVICE_HOST/PORT not set")
		}
		token, err := os.ReadFile(filepath.Join(saDir, "token"))
		if err != nil {
			return "", err
		}
		ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
		if err != nil {
			return "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return "", fmt.Errorf("bad ca.crt")
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		u := "https://" + net.JoinHostPort(host, port) + "/version"
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: HTTP %d: %s", u, resp.StatusCode, b)
		}
		return fmt.Sprintf("%s -> %s", u, strings.Join(strings.Fields(string(b)), " ")), nil
	}) && ok

	if *url != "" {
		ok = retry("ClusterIP Service", *timeout, func() (string, error) {
			c := &http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get(*url)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "stow-probe-ok") {
				return "", fmt.Errorf("%s: HTTP %d: %q", *url, resp.StatusCode, b)
			}
			return fmt.Sprintf("%s -> %s", *url, strings.TrimSpace(string(b))), nil
		}) && ok
	}

	if *dns != "" {
		ok = retry("DNS", *timeout, func() (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupHost(ctx, *dns)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s -> %v", *dns, addrs), nil
		}) && ok
	}

	if *out != "" {
		ok = retry("write to volume", 5*time.Second, func() (string, error) {
			h, _ := os.Hostname()
			f := filepath.Join(*out, "probe-"+h+".txt")
			if err := os.WriteFile(f, []byte(fmt.Sprintf("written by %s uid=%d\n", h, os.Getuid())), 0o644); err != nil {
				return "", err
			}
			return f, nil
		}) && ok
	}

	if !ok {
		fmt.Println("RESULT: FAIL")
		return 1
	}
	fmt.Println("RESULT: PASS")
	return 0
}
