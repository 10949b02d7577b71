package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"iproc/reporting/cdr"
	"iproc/reporting/sources"
	"iproc/reporting/store"
)

// eventLog is the event log the server writes to: the embedded store or
// the Redis one.
type eventLog interface {
	store.Log
	// Ping reports whether the log can serve (for /readyz).
	Ping() error
}

// redisPingTimeout bounds the Redis check of /readyz.
const redisPingTimeout = time.Second

// openRedis makes the client of cfg.RedisURL (it connects lazily).
func openRedis(rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// The URL may hold a password: never repeat it.
		return nil, errors.New("redis: not a valid redis://host:port/db URL")
	}
	opts.MaxRetries = -1 // the consumer and the store retry themselves
	return redis.NewClient(opts), nil
}

// instanceID returns this instance's name, kept in dataDir/instance-id so
// that it survives restarts (the CDR consumer's processing list is named
// after it); it is created on first start.
func instanceID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "instance-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("instance id: %w", err)
	}
	host, _ := os.Hostname()
	id := strings.ReplaceAll(host, ":", "-") + "-" + uuid.NewString()[:8]
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return id, nil
}

// startCDR starts the dialer CDR consumer on s.rdb.
func (s *Server) startCDR() error {
	c, err := cdr.New(cdr.Config{
		Redis: s.rdb, Key: s.cfg.CDRKey, Instance: s.instance, Log: s.store,
		Logger: s.log.With().Str("component", "cdr").Logger(),
		Counted: func(outcome string, n int) {
			switch outcome {
			case "stored":
				s.metrics.eventsIn.WithLabelValues("dialer_cdr").Add(float64(n))
			case "duplicate":
				s.metrics.duplicates.Add(float64(n))
				s.sources.Duplicates(sources.DialerCDR, n)
			case "dead":
				s.metrics.ingestRejected.WithLabelValues("dead_letter").Add(float64(n))
				s.sources.Rejected(sources.DialerCDR, n)
			}
		},
	})
	if err != nil {
		return err
	}
	s.cdr = c
	c.Start()
	return nil
}

// probeDialer returns the reading of the dialer's lists for the source
// health tracker; nil without Redis.
func (s *Server) probeDialer() func(context.Context) sources.Probe {
	if s.rdb == nil {
		return nil
	}
	key := s.cfg.CDRKey
	if key == "" {
		key = cdr.DefaultKey
	}
	return func(ctx context.Context) sources.Probe {
		length, dead, err := cdr.Probe(ctx, s.rdb, key)
		return sources.Probe{ListLength: length, DeadLetters: dead, Err: err}
	}
}

// redisReady reports why Redis, when configured, cannot be used now.
func (s *Server) redisReady() error {
	if s.rdb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisPingTimeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("unreachable: %w", err)
	}
	if s.cdr != nil {
		if err := s.cdr.Err(); err != nil {
			return fmt.Errorf("CDR consumer: %w", err)
		}
	}
	return nil
}

// stopCDR stops the consumer; it runs before the store closes.
func (s *Server) stopCDR() {
	if s.cdr != nil {
		s.cdr.Stop()
	}
}

// closeRedis closes the client; it runs after the store closed.
func (s *Server) closeRedis() {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}

// clusterInfo is what the session registry needs to share sessions with
// the other instances of the domain; zero without the Redis log.
type clusterInfo struct {
	instance string
	alive    func(string) bool
}

// openRedisLog opens the event log shared by the instance domain.
func (s *Server) openRedisLog() (eventLog, error) {
	st, err := store.OpenRedis(store.RedisConfig{
		Client:    s.rdb,
		Domain:    s.cfg.InstanceDomain,
		Instance:  s.instance,
		History:   s.cfg.History,
		Projector: logProjectors(),
		OnCommit:  s.onCommit,
		Log:       s.log.With().Str("component", "store").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	s.cluster = clusterInfo{instance: s.instance, alive: st.Alive}
	return st, nil
}

// Prefetch implements store.Prefetcher for the projectors that do.
func (ps projectors) Prefetch(ev store.Event) []store.BucketKey {
	var keys []store.BucketKey
	for _, p := range ps {
		if pf, ok := p.(store.Prefetcher); ok {
			keys = append(keys, pf.Prefetch(ev)...)
		}
	}
	return keys
}

// OrderedBuckets implements store.OrderedBuckets for the projectors that do.
func (ps projectors) OrderedBuckets() []string {
	var out []string
	for _, p := range ps {
		if ob, ok := p.(store.OrderedBuckets); ok {
			out = append(out, ob.OrderedBuckets()...)
		}
	}
	return out
}

// redisLogger writes go-redis's messages ("connection pool: failed to
// dial", …) through zerolog, so that the log stays one JSON object per line.
type redisLogger struct{ log zerolog.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Str("component", "redis").Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// UseRedisLogger makes go-redis log through log. go-redis keeps one logger
// for the whole process, so this is for main to call once, before any
// client is made; servers in tests leave go-redis's default.
func UseRedisLogger(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log: log})
}
