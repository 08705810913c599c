// dns is a minimal, local-only cluster DNS server for hack/local-cluster.sh. It runs on the host,
// listens on the pod bridge gateway (UDP and TCP), and answers only names under the cluster domain:
//
//	<service>.<namespace>.svc.<domain>  A -> the Service ClusterIP (headless: ready endpoint IPs)
//
// Everything else gets NXDOMAIN (names outside the cluster domain: REFUSED): it never forwards, so
// no query leaves the machine. Services are looked up in the apiserver with a client certificate.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

type resolver struct {
	api    string
	client *http.Client
	domain string // "cluster.local."

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	ips []netip.Addr
	ok  bool // the service exists
	at  time.Time
}

func (r *resolver) get(path string, v any) (int, error) {
	resp, err := r.client.Get(r.api + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

// service returns the IPv4 addresses for namespace/name and whether the service exists.
func (r *resolver) service(ns, name string) ([]netip.Addr, bool, error) {
	key := ns + "/" + name
	r.mu.Lock()
	c, hit := r.cache[key]
	r.mu.Unlock()
	if hit && time.Since(c.at) < 2*time.Second {
		return c.ips, c.ok, nil
	}
	var svc struct {
		Spec struct {
			ClusterIP  string   `json:"clusterIP"`
			ClusterIPs []string `json:"clusterIPs"`
		} `json:"spec"`
	}
	code, err := r.get("/api/v1/namespaces/"+url.PathEscape(ns)+"/services/"+url.PathEscape(name), &svc)
	if err != nil {
		return nil, false, err
	}
	if code != http.StatusOK && code != http.StatusNotFound {
		return nil, false, fmt.Errorf("apiserver: HTTP %d for service %s", code, key)
	}
	var ips []netip.Addr
	ok := code == http.StatusOK
	if ok && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != "None" {
		for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if a, err := netip.ParseAddr(s); err == nil && a.Is4() && !contains(ips, a) {
				ips = append(ips, a)
			}
		}
	} else if ok { // headless: ready endpoints
		var sl struct {
			Items []struct {
				Endpoints []struct {
					Addresses  []string `json:"addresses"`
					Conditions struct {
						Ready *bool `json:"ready"`
					} `json:"conditions"`
				} `json:"endpoints"`
			} `json:"items"`
		}
		q := url.Values{"labelSelector": {"kubernetes.io/service-name=" + name}}
		if _, err := r.get("/apis/discovery.k8s.io/v1/namespaces/"+url.PathEscape(ns)+"/endpointslices?"+q.Encode(), &sl); err != nil {
			return nil, false, err
		}
		for _, it := range sl.Items {
			for _, ep := range it.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, s := range ep.Addresses {
					if a, err := netip.ParseAddr(s); err == nil && a.Is4() && !contains(ips, a) {
						ips = append(ips, a)
					}
				}
			}
		}
	}
	r.mu.Lock()
	r.cache[key] = cached{ips: ips, ok: ok, at: time.Now()}
	r.mu.Unlock()
	return ips, ok, nil
}

func contains(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// answer builds the response for one query message.
func (r *resolver) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, Authoritative: true}
	var answers []dnsmessage.AResource
	name := strings.ToLower(q.Name.String())
	switch {
	case !strings.HasSuffix(name, "."+r.domain):
		rh.Authoritative = false
		rh.RCode = dnsmessage.RCodeRefused
	default:
		labels := strings.Split(strings.TrimSuffix(name, "."+r.domain), ".")
		if len(labels) == 3 && labels[2] == "svc" {
			ips, ok, err := r.service(labels[1], labels[0])
			switch {
			case err != nil:
				log.Printf("lookup %s: %v", name, err)
				rh.RCode = dnsmessage.RCodeServerFailure
			case !ok:
				rh.RCode = dnsmessage.RCodeNameError
			case q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL:
				for _, ip := range ips {
					answers = append(answers, dnsmessage.AResource{A: ip.As4()})
				}
			} // other types for an existing name: NOERROR, no data
		} else {
			rh.RCode = dnsmessage.RCodeNameError
		}
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, a := range answers {
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5}, a); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:53", "UDP and TCP listen address")
	api := flag.String("apiserver", "", "apiserver URL")
	ca := flag.String("ca", "", "CA certificate file")
	cert := flag.String("cert", "", "client certificate file")
	key := flag.String("key", "", "client key file")
	domain := flag.String("domain", "cluster.local", "cluster domain")
	flag.Parse()
	caPEM, err := os.ReadFile(*ca)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	kp, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	r := &resolver{
		api:    strings.TrimSuffix(*api, "/"),
		domain: strings.Trim(strings.ToLower(*domain), ".") + ".",
		cache:  map[string]cached{},
		client: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}}}},
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving %s on %s (udp+tcp), apiserver %s", r.domain, *listen, r.api)
	go serveTCP(ln, r)
	buf := make([]byte, 4096)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		req := append([]byte(nil), buf[:n]...)
		go func() {
			resp, err := r.answer(req)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(resp, addr)
		}()
	}
}

func serveTCP(ln net.Listener, r *resolver) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(c net.Conn) {
			defer c.Close()
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				resp, err := r.answer(req)
				if err != nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := c.Write(append(out, resp...)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
			}
		}(c)
	}
}
