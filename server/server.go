// Package server is iproc's HTTP side: the /ws WebSocket endpoint and its
// connections, the notification ingest endpoints, health, metrics and admin
// endpoints, the hub that hands committed events to sessions, and shutdown.
//
// Concurrency: each connection has one reader goroutine, a bounded outbound
// queue and a writer goroutine, the only one that writes frames to its
// socket, which runs only while the queue holds frames; a full queue closes
// the connection with 1013. Committed
// events reach sessions through the hub, one goroutine that never blocks on a
// connection. Shutdown stops the listener, closes every socket with 1001,
// waits for the connection goroutines, then closes the store.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	berrors "go.etcd.io/bbolt/errors"

	"iproc/protocol"
	"iproc/reporting/cdr"
	"iproc/reporting/directory"
	"iproc/reporting/journey"
	"iproc/reporting/sources"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
	"iproc/resources/report"
	"iproc/resources/session"
	"iproc/resources/sso"
	"iproc/web"
)

// Config configures a Server. Zero values mean defaults.
type Config struct {
	// Addr is the listen address. Empty means 127.0.0.1:8080.
	Addr string
	// TLSCert and TLSKey, when both set, serve HTTPS/WSS (TLS 1.2 minimum).
	TLSCert, TLSKey string
	// Directory is the agent directory. Nil means the bundled demo.
	Directory *directory.Directory
	// DirectoryPath is the file Directory came from, re-read by SIGHUP and
	// reload requests without a body. Empty means the bundled demo.
	DirectoryPath string
	// DataDir is the embedded store's folder. Empty means ./iproc-data.
	DataDir string
	// IngestToken, when set, is required as a bearer token on /ingest/*;
	// when empty only loopback clients may post.
	IngestToken string
	// AdminToken, when set, is required on /admin/*; when empty /admin/* is
	// open to loopback clients only.
	AdminToken string
	// CustomerFields are the fields holding customer data, masked for
	// viewers who may not see them whole (SPEC §3.6). Nil means the
	// defaults (routing.DefaultCustomerFields); empty masks nothing.
	CustomerFields []string
	// AllowedOrigins lists the WebSocket Origin values accepted besides the
	// same host. Empty means same host only.
	AllowedOrigins []string
	// InstanceDomain names the group of instances serving the same clients.
	// Empty means "default".
	InstanceDomain string
	// SessionGrace is how long a disconnected session can be resumed. Zero
	// means 60s.
	SessionGrace time.Duration
	// History is how long events stay replayable. Zero means 24h.
	History time.Duration
	// SendQueueSize is the per-connection outbound queue length. Zero means 1024.
	SendQueueSize int
	// SendQueueBytes bounds the bytes of a connection's outbound queue.
	// Zero means 1 MiB.
	SendQueueBytes int
	// PongWait is how long a silent peer is kept. Zero means 60s.
	PongWait time.Duration
	// PingPeriod is the interval of WebSocket pings. Zero means 30s.
	PingPeriod time.Duration
	// WriteWait bounds each socket write. Zero means 10s.
	WriteWait time.Duration
	// Version is reported in service.info.
	Version string
	// CTIVendor and CTIVersion name the contact-centre platform behind
	// this server in service.info. Empty means Cisco and UCCX.
	CTIVendor, CTIVersion string
	// NoGroupCommit turns off group commit in the store (benchmarks only).
	NoGroupCommit bool
	// RedisURL (redis://host:port/db), when set, enables the dialer CDR
	// consumer (SPEC §4.1) and keeps the event log in Redis, shared by the
	// instances of InstanceDomain (SPEC §8), unless LocalStore. Empty means
	// no Redis.
	RedisURL string
	// CDRKey is the Redis list the dialer pushes CDRs to. Empty means
	// enigma:notifications:campaigns.
	CDRKey string
	// AllowedHosts lists the Host names (without port) this server answers
	// to besides the loopback names and the listen address (SPEC §4.2).
	AllowedHosts []string
	// MaxConnections bounds the WebSocket connections open at once; past
	// it the upgrade answers 503. Zero means 20000.
	MaxConnections int
	// LocalStore keeps the event log in the embedded store even with
	// RedisURL: Redis then only feeds the CDR consumer, and the instance
	// does not share state with others.
	LocalStore bool
	// OIDCIssuer, when set, enables single sign-on: prepareSession takes
	// agent: {id, token} with an OpenID Connect ID token of this issuer.
	OIDCIssuer string
	// OIDCAudience is the client id ID tokens must be issued for (required
	// with OIDCIssuer).
	OIDCAudience string
	// OIDCAgentClaim names the token claim that must equal the agent id.
	// Empty means preferred_username.
	OIDCAgentClaim string
	// NoPasswordLogin refuses password logins (single sign-on only).
	NoPasswordLogin bool
	// SourceQuiet is the silence after which a notification source that
	// sent before is reported quiet (SPEC §3.7). Zero means 5m.
	SourceQuiet time.Duration
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./iproc-data"
	}
	if c.InstanceDomain == "" {
		c.InstanceDomain = "default"
	}
	if c.SessionGrace <= 0 {
		c.SessionGrace = 60 * time.Second
	}
	if c.History <= 0 {
		c.History = 24 * time.Hour
	}
	if c.SendQueueSize <= 0 {
		c.SendQueueSize = 1024
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 1 << 20
	}
	if c.PongWait <= 0 {
		c.PongWait = 60 * time.Second
	}
	if c.PingPeriod <= 0 {
		c.PingPeriod = 30 * time.Second
	}
	if c.WriteWait <= 0 {
		c.WriteWait = 10 * time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 20000
	}
	if c.CTIVendor == "" {
		c.CTIVendor = "Cisco"
	}
	if c.CTIVersion == "" {
		c.CTIVersion = "UCCX"
	}
}

// ErrDataInUse means another process holds the data folder's store.
var ErrDataInUse = errors.New("another iproc is using")

// Server is an iproc server.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	store    eventLog
	rdb      *redis.Client // nil without RedisURL
	cdr      *cdr.Consumer // nil without RedisURL
	instance string        // this instance's name (DataDir/instance-id)
	cluster  clusterInfo   // set with the Redis log
	sessions *session.Registry
	sso      *sso.Verifier // nil without OIDCIssuer
	sources  *sources.Tracker
	router   *router
	hub      *hub
	metrics  *metrics
	commits  commitClock // commit times of recent seqs, for iproc_commit_to_socket_seconds
	upgrader websocket.Upgrader
	// writeBufs holds the connections' write buffers (*[]byte), shared so
	// that an idle connection holds none.
	writeBufs sync.Pool
	// connCfg is what every connection gets of the server.
	connCfg connConfig
	// infoFrame is the service.info event, the same for every connection:
	// encoded once, and not on the connection's goroutine, whose stack
	// would grow for it and stay grown while the connection idles.
	infoFrame []byte
	// bodyBufs holds ingest body buffers (*bytes.Buffer).
	bodyBufs sync.Pool
	origins  map[string]bool
	hosts    hostCheck
	handler  http.Handler

	ctx    context.Context // ends at shutdown
	cancel context.CancelFunc
	bg     sync.WaitGroup // background goroutines (registry expiry)

	mu      sync.Mutex
	conns   map[*conn]struct{}
	wsOpen  int // WebSocket connections upgraded or upgrading, at most MaxConnections
	closing bool
	connWG  sync.WaitGroup

	httpSrv  *http.Server
	shutOnce sync.Once
	reloadMu sync.Mutex
}

// New opens the store and builds a server. Close (or Shutdown) releases it.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	cfg.setDefaults()
	if cfg.Directory == nil {
		cfg.Directory = directory.Demo()
	}
	s := &Server{cfg: cfg, log: log, conns: map[*conn]struct{}{}, origins: map[string]bool{}}
	for _, o := range cfg.AllowedOrigins {
		if o = strings.TrimSpace(o); o != "" {
			s.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sources = sources.NewTracker(sources.Config{
		Quiet: cfg.SourceQuiet, Dialer: cfg.RedisURL != "",
		Logger: log.With().Str("component", "sources").Logger(),
	})
	s.metrics = newMetrics(func() float64 {
		if s.sessions == nil {
			return 0
		}
		return float64(s.sessions.Count())
	}, s.sources.Report)
	s.hub = newHub(s.metrics)
	if cfg.RedisURL != "" {
		var err error
		if s.instance, err = instanceID(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("data %s: %w", cfg.DataDir, err)
		}
		if s.rdb, err = openRedis(cfg.RedisURL); err != nil {
			return nil, err
		}
	}
	var st eventLog
	var err error
	if s.rdb != nil && !cfg.LocalStore {
		st, err = s.openRedisLog()
	} else {
		st, err = s.openLocalLog(cfg, log)
	}
	if errors.Is(err, berrors.ErrTimeout) || errors.Is(err, store.ErrLocked) { // the store's file lock is held
		s.closeRedis()
		return nil, fmt.Errorf("%w %s (stop it, or give this one another --data folder)", ErrDataInUse, cfg.DataDir)
	}
	if err != nil {
		s.closeRedis()
		return nil, fmt.Errorf("data %s: %w", cfg.DataDir, err)
	}
	s.store = st
	if err := st.View(func(kv store.KV) error { s.sources.Restore(kv); return nil }); err != nil {
		st.Close()
		s.closeRedis()
		return nil, fmt.Errorf("data %s: read source health: %w", cfg.DataDir, err)
	}
	verifyToken, err := s.tokenVerifier()
	if err != nil {
		st.Close()
		s.closeRedis()
		return nil, err
	}
	s.sessions, err = session.New(session.Config{
		Log: st, Directory: cfg.Directory, Grace: cfg.SessionGrace,
		Logger:   log.With().Str("component", "sessions").Logger(),
		Instance: s.cluster.instance, Alive: s.cluster.alive,
		VerifyToken: verifyToken, NoPasswordLogin: cfg.NoPasswordLogin,
		CustomerFields: cfg.CustomerFields,
	})
	if err != nil {
		st.Close()
		s.closeRedis()
		return nil, err
	}
	s.hub.start(s.sessions)
	s.router = &router{sessions: s.sessions, reports: report.New(st, s.sessions.CustomerFields()), log: log,
		requests: s.metrics.requests, capabilities: s.capabilities(), sources: s.sources}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   256, // requests are small; larger frames are read in pieces
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.checkOrigin,
	}
	s.writeBufs.New = func() any {
		b := make([]byte, 0, writeBufSize)
		return &b
	}
	s.connCfg = connConfig{
		writer: writerConfig{
			MaxFrames: cfg.SendQueueSize, MaxBytes: cfg.SendQueueBytes,
			WriteWait: cfg.WriteWait, PingPeriod: cfg.PingPeriod,
			Bufs: &s.writeBufs, Wrote: s.wroteFrames,
		},
		PongWait: cfg.PongWait, Handle: s.router.handle, Log: &s.log, Ctx: s.ctx,
		FramesIn: s.metrics.framesIn, SlowConsumers: s.metrics.slowConsumers,
	}
	s.bodyBufs.New = func() any { return new(bytes.Buffer) }
	s.infoFrame = s.serviceInfo()
	s.hosts = newHostCheck(cfg.Addr, cfg.AllowedHosts)
	s.handler = s.hosts.wrap(s.routes())
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.sessions.Run(s.ctx)
	}()
	if s.rdb != nil {
		if err := s.startCDR(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.sources.Run(s.ctx, st, s.probeDialer())
	}()
	return s, nil
}

// openLocalLog opens the embedded (Pebble) log in the data folder, after
// refusing a folder that still holds the previous (bbolt) format.
func (s *Server) openLocalLog(cfg Config, log zerolog.Logger) (eventLog, error) {
	if err := store.CheckFormat(cfg.DataDir); err != nil {
		return nil, err
	}
	return store.OpenPebble(store.PebbleConfig{
		Dir:           filepath.Join(cfg.DataDir, store.PebbleDir),
		History:       cfg.History,
		NoGroupCommit: cfg.NoGroupCommit,
		Projector:     logProjectors(),
		OnCommit:      s.onCommit,
		Log:           log.With().Str("component", "store").Logger(),
	})
}

// logProjectors are the projections every log keeps.
func logProjectors() projectors {
	return projectors{journey.Projector{}, teamstatus.Projector{}, session.Projector{}, sources.Projector{}}
}

// projectors runs several projectors in order.
type projectors []store.Projector

// Prune implements store.Pruner with the projectors that do.
func (ps projectors) Prune(kv store.KV, before time.Time) (int, error) {
	total := 0
	for _, p := range ps {
		if pr, ok := p.(store.Pruner); ok {
			n, err := pr.Prune(kv, before)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (ps projectors) Project(kv store.KV, ev store.Event) error {
	for _, p := range ps {
		if err := p.Project(kv, ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.Handle("/ingest/", s.ingestRoutes())
	mux.HandleFunc("PUT /admin/directory", s.adminDirectory)
	mux.HandleFunc("GET /admin/directory", s.getDirectory)
	// Wrong methods answer 405 with Allow, unknown paths 404, in JSON.
	for _, p := range []string{"/ws", "/healthz", "/readyz", "/metrics", "/admin/"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			noRoute(w, r, mux, p, "no endpoint at "+r.URL.Path)
		})
	}
	mux.Handle("/", web.Handler()) // GET and HEAD; other methods answer 405
	return mux
}

// Handler returns the server's HTTP handler (for httptest and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) capabilities() map[string]any {
	return map[string]any{
		"models":          []string{protocol.ModelUCCX},
		"resourceTypes":   []string{protocol.ResourceTypeSession, protocol.ResourceTypeReport},
		"reports":         []string{protocol.CmdCallJourney, protocol.CmdTeamStatusBegin, protocol.CmdTeamStatusEnd, protocol.CmdCampaignGroups, protocol.CmdSources},
		"topics":          protocol.Topics(),
		"maxMessageBytes": protocol.MaxMessageBytes,
		"resume":          true,
		"sessionGrace":    s.cfg.SessionGrace.String(),
		"history":         s.cfg.History.String(),
		"sourceQuiet":     s.sources.Quiet().String(),
		"instance-domain": s.cfg.InstanceDomain,
		"logins":          s.logins(),
	}
}

// logins lists the kinds of login prepareSession takes.
func (s *Server) logins() []string {
	var out []string
	if !s.cfg.NoPasswordLogin {
		out = append(out, "password")
	}
	if s.cfg.OIDCIssuer != "" {
		out = append(out, "oidc")
	}
	return out
}

// tokenVerifier starts reading the identity provider's discovery document
// (in the background, until s.ctx ends) and returns the check of ID tokens;
// nil without OIDCIssuer.
func (s *Server) tokenVerifier() (func(ctx context.Context, agentID, token string) error, error) {
	if s.cfg.OIDCIssuer == "" {
		if s.cfg.NoPasswordLogin {
			return nil, errors.New("password logins are off and no OpenID Connect issuer is set: nobody could log in")
		}
		return nil, nil
	}
	v, err := sso.New(s.ctx, sso.Config{
		Issuer: s.cfg.OIDCIssuer, Audience: s.cfg.OIDCAudience, AgentClaim: s.cfg.OIDCAgentClaim,
		Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	s.sso = v
	return v.Verify, nil
}

// SSOReady is closed once the OpenID Connect issuer's discovery document has
// been read (token logins answer server.unavailable before); nil without an
// issuer.
func (s *Server) SSOReady() <-chan struct{} {
	if s.sso == nil {
		return nil
	}
	return s.sso.Ready()
}

func (s *Server) serviceInfo() []byte {
	return protocol.Marshal(protocol.Event{Name: protocol.EventServiceInfo, Data: map[string]string{
		"vendor":          "iproc",
		"version":         s.cfg.Version,
		"cti-vendor":      s.cfg.CTIVendor,
		"cti-version":     s.cfg.CTIVersion,
		"instance-domain": s.cfg.InstanceDomain,
	}})
}

// checkOrigin accepts requests with no Origin (non-browser clients), the
// same host, and the configured allow-list. Comparing Origin with Host is
// sound only because Host was checked first (hostCheck): a foreign page's
// Origin and Host are both its own.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return s.origins[strings.ToLower(strings.TrimRight(origin, "/"))]
}

// serveWS upgrades and starts one connection. The connection runs on a
// goroutine of its own and the handler returns at once: net/http's state for
// the request (the request, two 4 KiB bufio buffers, the handler's stack) is
// then freed, which was most of an idle connection's memory.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if s.wsOpen >= s.cfg.MaxConnections {
		s.mu.Unlock()
		s.metrics.refusedConns.Inc()
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "server.unavailable", "too many connections: retry later")
		return
	}
	s.wsOpen++
	s.connWG.Add(1)
	s.mu.Unlock()
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.connEnded()
		s.log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("upgrade refused")
		return
	}
	c := newConn(&s.connCfg, ws, r.RemoteAddr)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	} else {
		s.conns[c] = struct{}{}
		s.mu.Unlock()
	}
	go s.runConn(c)
}

// connEnded releases the place of one connection (MaxConnections).
func (s *Server) connEnded() {
	s.mu.Lock()
	s.wsOpen--
	s.mu.Unlock()
	s.connWG.Done()
}

// runConn runs the connection's reader on this goroutine until it ends and
// the writer finished the connection, then closes the socket and detaches
// its session.
func (s *Server) runConn(c *conn) {
	defer s.connEnded()
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	c.Send(s.infoFrame)
	c.readLoop()
	c.closeWith(websocket.CloseNormalClosure, "")
	c.w.wait()
	c.finish()
	if sess := c.sess.Load(); sess != nil {
		s.sessions.Detach(sess, c)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.logAt(s.log.Debug()).Msg("connection closed")
}

// ListenAndServe serves on cfg.Addr until Shutdown. It returns nil after a
// clean shutdown.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ln)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	srv := s.httpSrv
	s.mu.Unlock()
	var err error
	if s.cfg.TLSCert != "" && s.cfg.TLSKey != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		err = srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight HTTP requests finish, closes
// every WebSocket with 1001, waits for the connections, then flushes and
// closes the store. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		srv := s.httpSrv
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		if srv != nil {
			// Shutdown waits for in-flight ingest requests; it does not
			// wait for hijacked WebSockets, which are closed below.
			go func() {
				for _, c := range conns {
					c.closeWith(websocket.CloseGoingAway, "server shutting down")
				}
			}()
			if e := srv.Shutdown(ctx); e != nil {
				err = fmt.Errorf("http shutdown: %w", e)
			}
		}
		s.mu.Lock()
		for c := range s.conns {
			c.closeWith(websocket.CloseGoingAway, "server shutting down")
		}
		s.mu.Unlock()
		waitGroup(ctx, &s.connWG)
		s.cancel()
		s.bg.Wait()
		s.stopCDR()
		if e := s.store.Close(); e != nil && err == nil {
			err = fmt.Errorf("close store: %w", e)
		}
		s.hub.close()
		s.closeRedis()
	})
	return err
}

// Close shuts the server down with a 10 s limit.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
