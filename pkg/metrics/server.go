package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"
	"github.com/prometheus/pushgateway/handler"
	"github.com/prometheus/pushgateway/storage"
	"k8s.io/klog/v2"
)

// Defaults of the embedded Pushgateway.
const (
	DefaultAddress             = ":56789"
	DefaultPersistenceInterval = time.Minute
	DefaultMaxPushBytes        = 16 << 20
	shutdownTimeout            = 10 * time.Second
)

// ServerOptions configure the embedded Pushgateway and metrics endpoint.
type ServerOptions struct {
	// Address to listen on; DefaultAddress when empty. "127.0.0.1:0" picks a port.
	Address string
	// PersistenceFile keeps pushed metrics across restarts; its directory must
	// exist and be writable. Empty keeps them in memory only.
	PersistenceFile string
	// PersistenceInterval is the longest time a push waits before it is written
	// to PersistenceFile; DefaultPersistenceInterval when 0. Stop always writes.
	PersistenceInterval time.Duration
	// Collectors are registered on prometheus.DefaultRegisterer for the
	// server's lifetime (e.g. NewSessionCollector(...)).
	Collectors []prometheus.Collector
	// MaxPushBytes bounds one push body after decompression; DefaultMaxPushBytes when 0.
	MaxPushBytes int64
	// Logger for the Pushgateway storage and handlers; klog when nil.
	Logger *slog.Logger
	// Extra are further GET handlers served on the same port, by path
	// prefix (ending in "/"), for Jobs that reach the operator here.
	Extra map[string]http.Handler
	// PushToken, when set, must be sent in the PushTokenHeader of every
	// push and delete, besides their coming over loopback: a service-mesh
	// sidecar forwards other pods' requests from a loopback address
	// (Istio's 127.0.0.6), which loopback alone would let through. The
	// operator sets a random one and gives it to its own pusher
	// (NewPusherWithToken).
	PushToken string
}

// PushTokenHeader carries ServerOptions.PushToken.
const PushTokenHeader = "Stow-Push-Token"

// Server is a Pushgateway embedded in the operator. It serves:
//
//	PUT|POST|DELETE /metrics/job/<job>[/<label>/<value>...]  (and /metrics/job@base64/..., <label>@base64/<value>),
//	                 from loopback only: the operator pushes, nobody else (see localOnly)
//	GET /metrics     pushed metrics plus the operator's own (default registry)
//	GET /-/healthy, /-/ready
//
// Pushes are checked for consistency against the default registry and the
// other groups, as the real Pushgateway does; a scrape never fails because of
// a pushed metric (ContinueOnError): the clashing series is dropped and logged.
type Server struct {
	opts       ServerOptions
	logger     *slog.Logger
	store      *storage.DiskMetricStore
	ln         net.Listener
	http       *http.Server
	registered []prometheus.Collector

	runOnce   sync.Once
	closeOnce sync.Once
	closeErr  error
}

// NewServer restores persisted metrics and binds the listen address; Run serves.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if opts.PersistenceInterval <= 0 {
		opts.PersistenceInterval = DefaultPersistenceInterval
	}
	if opts.MaxPushBytes <= 0 {
		opts.MaxPushBytes = DefaultMaxPushBytes
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(logr.ToSlogHandler(klog.Background().WithName("pushgateway")))
	}
	if opts.PersistenceFile != "" {
		if err := checkWritableDir(filepath.Dir(opts.PersistenceFile)); err != nil {
			return nil, fmt.Errorf("pushgateway persistence file %s: %v", opts.PersistenceFile, err)
		}
	}
	s := &Server{opts: opts, logger: logger}
	for _, c := range opts.Collectors {
		if err := prometheus.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue // registered by its owner; not ours to unregister
			}
			s.unregister()
			return nil, fmt.Errorf("register operator metrics: %v", err)
		}
		s.registered = append(s.registered, c)
	}
	// The default gatherer supplies the standard HELP strings for names the
	// operator itself exposes, and the consistency check of every push.
	s.store = storage.NewDiskMetricStore(opts.PersistenceFile, opts.PersistenceInterval, prometheus.DefaultGatherer, logger)
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		_ = s.store.Shutdown()
		s.unregister()
		return nil, fmt.Errorf("pushgateway listen on %s: %v", opts.Address, err)
	}
	s.ln = LimitListener(ln)
	s.http = Limit(&http.Server{Handler: s.Handler()})
	return s, nil
}

// Addr is the address the server listens on (with the chosen port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://<Addr>, for pushers in the same process and tests.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Handler serves the routes listed on Server.
func (s *Server) Handler() http.Handler {
	r := route.New()
	r.Get("/-/healthy", handler.Healthy(s.store).ServeHTTP)
	r.Get("/-/ready", handler.Ready(s.store).ServeHTTP)
	gatherers := prometheus.Gatherers{
		prometheus.DefaultGatherer,
		prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return s.store.GetMetricFamilies(), nil }),
	}
	r.Get("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP)
	for _, suffix := range []string{"", handler.Base64Suffix} {
		b64 := suffix != ""
		base := "/metrics/job" + suffix + "/:job"
		for _, p := range []string{base, base + "/*labels"} {
			r.Put(p, s.operatorOnly(s.decodePush(handler.Push(s.store, true, true, b64, s.logger))))
			r.Post(p, s.operatorOnly(s.decodePush(handler.Push(s.store, false, true, b64, s.logger))))
			r.Del(p, s.operatorOnly(handler.Delete(s.store, b64, s.logger)))
		}
	}
	if len(s.opts.Extra) == 0 {
		return r
	}
	mux := http.NewServeMux()
	for prefix, h := range s.opts.Extra {
		mux.Handle(prefix, h)
	}
	mux.Handle("/", r)
	return mux
}

// Run serves until ctx is done, then stops accepting requests, lets running
// ones finish, and writes the persistence file. It returns nil after a clean
// stop.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("pushgateway: Run called more than once")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.logger.Warn("pushgateway: requests still running at shutdown", "err", err)
	}
	if serveErr == nil {
		serveErr = <-served
	}
	closeErr := s.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("pushgateway serve: %v", serveErr)
	}
	return closeErr
}

// Close releases a server that is not running (Run calls it on its way out):
// it closes the listener, writes the persistence file and unregisters the
// collectors it registered.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.ln.Close()
		if err := s.store.Shutdown(); err != nil {
			s.closeErr = fmt.Errorf("pushgateway persist %s: %v", s.opts.PersistenceFile, err)
		}
		s.unregister()
	})
	return s.closeErr
}

func (s *Server) unregister() {
	for _, c := range s.registered {
		prometheus.Unregister(c)
	}
	s.registered = nil
}

// operatorOnly refuses a push or delete that does not come over loopback
// with the push token (when one is set). The operator is the only pusher (it
// pushes what Jobs report, under labels it chooses); the port is reachable
// from every pod through the Service, and a Job running a user's Function
// could otherwise write or delete any group, another namespace's included.
func (s *Server) operatorOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		tokenOK := s.opts.PushToken == "" ||
			subtle.ConstantTimeCompare([]byte(r.Header.Get(PushTokenHeader)), []byte(s.opts.PushToken)) == 1
		if err != nil || ip == nil || !ip.IsLoopback() || !tokenOK {
			http.Error(w, "pushes are accepted only from the Stow operator itself: Jobs report their results and the operator pushes the metrics", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

var protoDelimFormat = expfmt.NewFormat(expfmt.TypeProtoDelim)

// decodePush normalizes a push body before the Pushgateway handler sees it:
//   - Content-Encoding: gzip is decoded (the upstream handler expects its
//     main() to do that);
//   - the body is bounded to MaxPushBytes after decompression;
//   - a text-format body is parsed here and re-encoded as delimited protobuf,
//     because the upstream handler's zero-value text parser panics with
//     prometheus/common >= v0.66 (no name validation scheme set).
func (s *Server) decodePush(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body io.ReadCloser = r.Body
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "push body is not valid gzip: "+err.Error(), http.StatusBadRequest)
				return
			}
			defer gz.Close()
			body = gz
			r.Header.Del("Content-Encoding")
		default:
			http.Error(w, fmt.Sprintf("unsupported Content-Encoding %q (use gzip or none)", enc), http.StatusUnsupportedMediaType)
			return
		}
		body = http.MaxBytesReader(w, body, s.opts.MaxPushBytes)
		if !isProtoDelim(r.Header.Get("Content-Type")) {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := parser.TextToMetricFamilies(body)
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					http.Error(w, fmt.Sprintf("push body larger than %d bytes", s.opts.MaxPushBytes), http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "push body is not valid text exposition format: "+err.Error(), http.StatusBadRequest)
				return
			}
			var buf bytes.Buffer
			enc := expfmt.NewEncoder(&buf, protoDelimFormat)
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					http.Error(w, "cannot re-encode pushed metrics: "+err.Error(), http.StatusBadRequest)
					return
				}
			}
			body = io.NopCloser(&buf)
			r.ContentLength = int64(buf.Len())
			r.Header.Set("Content-Type", string(protoDelimFormat))
		} else {
			r.ContentLength = -1
		}
		r.Body = body
		next(w, r)
	}
}

func isProtoDelim(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/vnd.google.protobuf" &&
		params["encoding"] == "delimited" && params["proto"] == "io.prometheus.client.MetricFamily"
}

func checkWritableDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory: %v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".stow-write-check-")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %v", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
