package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Internal buckets. Projection buckets are prefixed with "p/" (see kv.go).
var (
	eventsBucket = []byte("events")
	dedupBucket  = []byte("dedup")
	metaBucket   = []byte("meta")
	headKey      = []byte("head")
)

const (
	defaultHistory  = 24 * time.Hour
	defaultMaxBatch = 4096
	// requestQueue bounds the requests waiting for the committer.
	requestQueue = 1024
	// maxReadLimit caps one Read.
	maxReadLimit = 10000
	// pruneEvery is the retention period; pruneChunk bounds the events
	// deleted per transaction so ingest is never stalled for long.
	pruneEvery = time.Minute
	pruneChunk = 1000
)

// setDefaults fills the settings every log shares when they are zero: the
// history (24h), the largest batch (4096 records) and the clock.
func setDefaults(history *time.Duration, maxBatch *int, now *func() time.Time) {
	if *history <= 0 {
		*history = defaultHistory
	}
	if *maxBatch <= 0 {
		*maxBatch = defaultMaxBatch
	}
	if *now == nil {
		*now = time.Now
	}
}

// BoltConfig configures the embedded log. Zero values mean defaults.
type BoltConfig struct {
	// Path is the file of the bbolt database; its directory is created if
	// missing. Required.
	Path string
	// History is the retention of events and dedup keys. Zero means 24h.
	History time.Duration
	// MaxBatch is the most records per group commit. A single Append larger
	// than this is still committed whole, alone. Zero means 4096.
	MaxBatch int
	// NoGroupCommit commits each Append in its own transaction (for
	// benchmarks).
	NoGroupCommit bool
	// Projector, when set, is called inside the committing transaction for
	// each new (non-duplicate) event, in seq order. An error (or panic)
	// fails the Append whose event it was, with ErrUnavailable, and stores
	// nothing of it.
	Projector Projector
	// OnCommit, when set, is called after each durable commit with the new
	// events of the commit, in seq order, before the appenders are answered.
	// It is called from one goroutine, never concurrently, and must be quick
	// (hand off, do not block). The events' Data must not be modified.
	OnCommit func([]Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the log's own messages.
	Log zerolog.Logger
}

// Bolt is the embedded event log, one bbolt file. Append hands its records to
// a single committer goroutine, which gathers every queued request into one
// transaction (one fsync) and answers each after the commit; a pruner
// goroutine deletes expired events in small transactions; readers use bbolt
// read transactions and never wait for writers.
type Bolt struct {
	db        *bolt.DB
	history   time.Duration
	maxBatch  int
	noGroup   bool
	projector Projector
	onCommit  func([]Event)
	now       func() time.Time
	log       zerolog.Logger

	appendQueue // Append's requests to the committer

	// peak, the committer's own, is inflight as it answered its last batch.
	peak   int64
	head   atomic.Uint64
	oldest atomic.Uint64
	// boundsMu orders updates of oldest by the committer and the pruner.
	boundsMu sync.Mutex
	// writeErr holds the last storage failure, cleared by a good commit.
	writeErr atomic.Pointer[error]

	stop       chan struct{}
	commitDone chan struct{}
	pruneDone  chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

var _ Log = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the database at cfg.Path, recovers the
// head and oldest seq, and starts the committer and the pruner. A database
// held by another process fails after one second.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.Path == "" {
		return nil, errors.New("store: open: empty path")
	}
	setDefaults(&cfg.History, &cfg.MaxBatch, &cfg.Now)
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", cfg.Path, err)
		}
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: database is locked by another process: %w", cfg.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Path, err)
	}
	b := &Bolt{
		db:          db,
		history:     cfg.History,
		maxBatch:    cfg.MaxBatch,
		noGroup:     cfg.NoGroupCommit,
		projector:   cfg.Projector,
		onCommit:    cfg.OnCommit,
		now:         cfg.Now,
		log:         cfg.Log,
		appendQueue: newAppendQueue(),
		stop:        make(chan struct{}),
		commitDone:  make(chan struct{}),
		pruneDone:   make(chan struct{}),
	}
	if err := b.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", cfg.Path, err)
	}
	oldest, head := b.Bounds()
	b.log.Info().Str("path", cfg.Path).Uint64("oldest", oldest).Uint64("head", head).
		Dur("history", b.history).Msg("event log opened")
	go b.commitLoop()
	go b.pruneLoop()
	return b, nil
}

// init creates the internal buckets and recovers head and oldest.
func (b *Bolt) init() error {
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{eventsBucket, dedupBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		var head uint64
		if v := tx.Bucket(metaBucket).Get(headKey); len(v) == 8 {
			head = binary.BigEndian.Uint64(v)
		}
		c := tx.Bucket(eventsBucket).Cursor()
		if k, _ := c.Last(); len(k) == 8 {
			head = max(head, binary.BigEndian.Uint64(k))
		}
		if k, _ := c.First(); len(k) == 8 {
			b.oldest.Store(binary.BigEndian.Uint64(k))
		}
		b.head.Store(head)
		return nil
	})
}

// Read returns up to limit events with seq > after, in seq order. A limit
// that is not positive or above 10000 means 10000.
func (b *Bolt) Read(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if b.isClosed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxReadLimit {
		limit = maxReadLimit
	}
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(eventsBucket).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(out)%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			seq := binary.BigEndian.Uint64(k)
			ev, err := decodeEvent(seq, v)
			if err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, b.readErr("read", err)
	}
	return out, nil
}

// Bounds returns the oldest retained seq (0 when none is retained) and the
// head (the highest committed seq, 0 when none).
func (b *Bolt) Bounds() (oldest, head uint64) {
	return b.oldest.Load(), b.head.Load()
}

// View runs fn over a read-only snapshot of the projection state. Values
// obtained from kv are valid only until fn returns.
func (b *Bolt) View(fn func(kv KV) error) error {
	if b.isClosed.Load() {
		return ErrClosed
	}
	err := b.db.View(func(tx *bolt.Tx) error {
		return fn(boltKV{tx: tx})
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Ping reports whether the log is open and its last write succeeded (for
// readiness checks).
func (b *Bolt) Ping() error {
	if b.isClosed.Load() {
		return ErrClosed
	}
	if p := b.writeErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	return nil
}

// Close stops accepting appends (they then fail with ErrClosed), commits the
// requests already queued, stops the goroutines and closes the database. It
// is idempotent; later calls return the first call's result.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.closeQueue()
		<-b.commitDone
		close(b.stop)
		<-b.pruneDone
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("store: close: %w", err)
		}
		b.log.Info().Uint64("head", b.head.Load()).Msg("event log closed")
	})
	return b.closeErr
}

// readErr maps a read transaction error.
func (b *Bolt) readErr(op string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
}
