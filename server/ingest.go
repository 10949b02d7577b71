package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"iproc/reporting/notify"
	"iproc/reporting/sources"
	"iproc/reporting/store"
)

// maxIngestBytes bounds a notification body.
const maxIngestBytes = 1 << 20

// decodeFunc turns a request body into notifications; many reports whether
// the body was an array (answered with seqs).
type decodeFunc func(body []byte, r *http.Request) (ns []notify.Notification, many bool, err error)

func (s *Server) ingestRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /ingest/ocs/campaign-group-state", s.ingest("ocs_campaign_group_state", sources.CampaignGroupState, func(b []byte, _ *http.Request) ([]notify.Notification, bool, error) {
		n, err := notify.DecodeCampaignGroupState(b)
		return []notify.Notification{n}, false, err
	}))
	mux.Handle("POST /ingest/ocs/contact-processed", s.ingest("ocs_contact_processed", sources.ContactProcessed, func(b []byte, r *http.Request) ([]notify.Notification, bool, error) {
		n, err := notify.DecodeContactProcessed(b, r.Header.Get("ETag"))
		return []notify.Notification{n}, false, err
	}))
	mux.Handle("POST /ingest/gms/callback", s.ingest("gms_callback", sources.Callback, func(b []byte, _ *http.Request) ([]notify.Notification, bool, error) {
		return notify.DecodeCallback(b)
	}))
	mux.HandleFunc("/ingest/", func(w http.ResponseWriter, r *http.Request) {
		noRoute(w, r, mux, "/ingest/", "no ingest endpoint at "+r.URL.Path+": use /ingest/ocs/campaign-group-state, /ingest/ocs/contact-processed or /ingest/gms/callback")
	})
	return mux
}

// ingest is the common path of every notification endpoint: auth, limits,
// decode + validate, one durable append, then the answer. source labels its
// metrics; health names it to the source health tracker, which counts the
// bodies refused as invalid and the duplicates (what is stored it learns
// from the log).
func (s *Server) ingest(source, health string, decode decodeFunc) http.Handler {
	// The metric children of this endpoint, looked up once.
	latency := s.metrics.ingestLatency.WithLabelValues(source)
	accepted := s.metrics.eventsIn.WithLabelValues(source)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reject := func(status int, code, msg string, fields ...string) {
			s.metrics.ingestRejected.WithLabelValues(http.StatusText(status)).Inc()
			switch status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
				s.sources.Rejected(health, 1)
			}
			writeError(w, status, code, msg, fields...)
		}
		if status, msg := s.authorize(r, s.cfg.IngestToken); status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="iproc ingest"`)
			}
			reject(status, "auth.forbidden", msg)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			reject(http.StatusUnsupportedMediaType, "request.invalid", "Content-Type must be application/json", "Content-Type")
			return
		}
		if s.hub.overloaded() {
			// Delivery is too far behind: the sender retries later rather
			// than iproc holding ever more events in memory.
			w.Header().Set("Retry-After", "1")
			reject(http.StatusServiceUnavailable, "server.unavailable", "delivery to clients is behind: retry after a second")
			return
		}
		// The body is read as it arrives: a Content-Length announced but not
		// sent costs nothing.
		buf := s.bodyBufs.Get().(*bytes.Buffer)
		buf.Reset() // grown as the body arrives, never from Content-Length
		_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxIngestBytes))
		body := buf.Bytes()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				reject(http.StatusRequestEntityTooLarge, "request.invalid", "the body is larger than 1 MiB")
				return
			}
			reject(http.StatusBadRequest, "request.malformed", "could not read the body")
			return
		}
		ns, many, err := decode(body, r)
		if err != nil {
			var ne *notify.Error
			if errors.As(err, &ne) {
				reject(http.StatusBadRequest, ne.Code, ne.Message, ne.Fields...)
				return
			}
			reject(http.StatusBadRequest, "request.invalid", err.Error())
			return
		}
		recs := make([]store.Record, len(ns))
		for i, n := range ns {
			recs[i] = store.Record{Name: n.Topic, Data: n.Data, DedupKey: n.DedupKey, Fields: n.Fields, Meta: store.Meta{AgentID: n.AgentID, Ext: n.Ext}}
		}
		// The append is not cut short by a client that hangs up: once
		// started, its outcome is decided by the commit.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), requestTimeout)
		defer cancel()
		results, err := s.store.Append(ctx, recs)
		if err != nil {
			// The committer may still read recs: buf is not reused.
			s.log.Warn().Err(err).Str("source", source).Msg("ingest: store cannot write")
			reject(http.StatusServiceUnavailable, "server.unavailable", "the event store cannot write right now: retry")
			return
		}
		if buf.Cap() <= maxPooledBody { // committed events do not alias recs
			s.bodyBufs.Put(buf)
		}
		latency.Observe(time.Since(start).Seconds())
		dup, dups := false, 0
		for _, res := range results {
			if res.Duplicate {
				dup = true
				dups++
				s.metrics.duplicates.Inc()
			} else {
				accepted.Inc()
			}
		}
		s.sources.Duplicates(health, dups)
		if !many {
			writeAccepted(w, results[0].Seq, dup)
			return
		}
		seqs := make([]uint64, len(results))
		for i, res := range results {
			seqs[i] = res.Seq
		}
		writeJSON(w, http.StatusOK, map[string]any{"accepted": true, "seqs": seqs})
	})
}

// maxPooledBody is the largest body buffer kept for reuse.
const maxPooledBody = 64 << 10

// writeAccepted answers one accepted notification without a map or
// reflection: {"accepted":true[,"duplicate":true],"seq":N}, as writeJSON
// would encode it.
func writeAccepted(w http.ResponseWriter, seq uint64, dup bool) {
	b := make([]byte, 0, 64)
	b = append(b, `{"accepted":true`...)
	if dup {
		b = append(b, `,"duplicate":true`...)
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// authorize checks a bearer token (constant time) when one is set, else
// that the client is on loopback. It returns 0 when allowed, else the status
// and the message.
func (s *Server) authorize(r *http.Request, token string) (int, string) {
	if token == "" {
		if isLoopback(r.RemoteAddr) && isLoopbackHost(r.Host) {
			return 0, ""
		}
		return http.StatusForbidden, "no token is configured, so only loopback clients are accepted"
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return http.StatusUnauthorized, "a bearer token is required"
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return http.StatusUnauthorized, "wrong bearer token"
	}
	return 0, ""
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
