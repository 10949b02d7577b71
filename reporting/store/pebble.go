package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// Key layout of the Pebble log, one keyspace:
//
//	"e" seq (8 bytes, big-endian) → the event (codec.go)
//	"d" dedup key                 → first seq and commit time (dedupValue)
//	"m" "head"                    → the highest seq ever committed
//	"p" bucket 0x00 key           → a projection value (KV)
const (
	prefixEvent      = 'e'
	prefixDedup      = 'd'
	prefixMeta       = 'm'
	prefixProjection = 'p'
)

var pebbleHeadKey = []byte("mhead")

// eventKey returns the key of seq.
func eventKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// dedupKey returns the key of a dedup key.
func dedupKey(key string) []byte {
	return append([]byte{prefixDedup}, key...)
}

// PebbleConfig configures the Pebble log. Zero values mean defaults.
type PebbleConfig struct {
	// Dir is the database directory, created if missing. Required.
	Dir string
	// History is the retention of events, dedup keys and (through a
	// projector that implements Pruner) projections. Zero means 24h.
	History time.Duration
	// MaxBatch is the most records per group commit. A single Append larger
	// than this is still committed whole, alone. Zero means 4096.
	MaxBatch int
	// NoGroupCommit commits each Append in its own batch (for benchmarks).
	NoGroupCommit bool
	// Projector, when set, is called for each new (non-duplicate) event, in
	// seq order, and its writes are committed in the same atomic batch as
	// the event. An error (or panic) fails the Append whose event it was,
	// with ErrUnavailable, and stores nothing of it.
	Projector Projector
	// OnCommit, when set, is called after each durable commit with the new
	// events of the commit, in seq order, right after the appenders are
	// answered. It is called from one goroutine, never concurrently; it may
	// block to slow ingest down (back-pressure). The events' Data must not
	// be modified.
	OnCommit func([]Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the log's own messages (Pebble's too).
	Log zerolog.Logger

	// fs, for tests, is the file system; nil means the disk.
	fs vfs.FS
}

// Pebble is the embedded event log, a Pebble (LSM) database: a commit is one
// write-ahead-log append and one fsync, whatever the number of records.
// Append hands its records to a single committer goroutine, which gathers
// every queued request into one indexed batch, runs the projectors over it
// and commits it synced; a pruner goroutine deletes expired events (a range
// delete), their dedup keys and expired projections; readers use snapshots
// and never wait for the writer.
type Pebble struct {
	db        *pebble.DB
	dir       string
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
	// writeMu is held by the committer while it builds and commits a batch,
	// and by the pruner while it prunes projections.
	writeMu sync.Mutex

	stop       chan struct{}
	commitDone chan struct{}
	pruneDone  chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

var _ Log = (*Pebble)(nil)

// OpenPebble opens (creating if needed) the database in cfg.Dir, checks it
// (Check: every record is read and its checksums verified), recovers the
// head and oldest seq, and starts the committer and the pruner. A damaged
// database is refused with an error that says what is wrong (ErrDamaged).
func OpenPebble(cfg PebbleConfig) (*Pebble, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store: open: empty directory")
	}
	setDefaults(&cfg.History, &cfg.MaxBatch, &cfg.Now)
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	db, err := openPebbleDB(cfg.Dir, cfg.Log, cfg.fs)
	if err != nil {
		return nil, err
	}
	p := &Pebble{
		db:          db,
		dir:         cfg.Dir,
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
	if err := p.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	oldest, head := p.Bounds()
	p.log.Info().Str("dir", cfg.Dir).Uint64("oldest", oldest).Uint64("head", head).
		Dur("history", p.history).Msg("event log opened")
	go p.commitLoop()
	go p.pruneLoop()
	return p, nil
}

// init checks every record and recovers head and oldest.
func (p *Pebble) init() error {
	head, oldest, err := checkPebble(p.db, p.dir)
	if err != nil {
		return err
	}
	p.head.Store(head)
	p.oldest.Store(oldest)
	return nil
}

// Read returns up to limit events with seq > after, in seq order. A limit
// that is not positive or above 10000 means 10000. A record that fails its
// checksum is an error (ErrUnavailable), never an event.
func (p *Pebble) Read(ctx context.Context, after uint64, limit int) (evs []Event, err error) {
	if p.isClosed.Load() {
		return nil, ErrClosed
	}
	defer p.closedDuring(&err)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxReadLimit {
		limit = maxReadLimit
	}
	// Only acknowledged events: Pebble shows a batch to readers before its
	// write-ahead log is synced, and an event read then could be lost in a
	// crash and its seq given to another event.
	head := p.head.Load()
	if after >= head {
		return nil, nil
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(after + 1), UpperBound: eventKey(head + 1)})
	if err != nil {
		return nil, p.readErr("read", err)
	}
	var out []Event
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		if len(out)%256 == 255 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, err
			}
		}
		k := it.Key()
		if len(k) != 9 {
			_ = it.Close()
			return nil, p.corrupt(fmt.Errorf("event key %x", k))
		}
		seq := binary.BigEndian.Uint64(k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, p.readErr("read", err)
		}
		ev, err := decodeEvent(seq, v)
		if err != nil {
			_ = it.Close()
			return nil, p.corrupt(fmt.Errorf("seq %d: %w", seq, err))
		}
		out = append(out, ev)
	}
	if err := it.Close(); err != nil {
		return nil, p.readErr("read", err)
	}
	return out, nil
}

// Bounds returns the oldest retained seq (0 when none is retained) and the
// head (the highest committed seq, 0 when none).
func (p *Pebble) Bounds() (oldest, head uint64) {
	return p.oldest.Load(), p.head.Load()
}

// View runs fn over a read-only snapshot of the projection state. Values
// obtained from kv are valid only until fn returns.
func (p *Pebble) View(fn func(kv KV) error) (err error) {
	if p.isClosed.Load() {
		return ErrClosed
	}
	defer p.closedDuring(&err)
	snap := p.db.NewSnapshot()
	defer snap.Close()
	return fn(&pebbleKV{r: snap})
}

// closedDuring turns Pebble's panic on a database closed under a reader
// (Close racing a Read or View) into ErrClosed; other panics go on.
func (p *Pebble) closedDuring(err *error) {
	if r := recover(); r != nil {
		if !p.isClosed.Load() {
			panic(r)
		}
		*err = ErrClosed
	}
}

// Ping reports whether the log is open and its last write succeeded (for
// readiness checks).
func (p *Pebble) Ping() error {
	if p.isClosed.Load() {
		return ErrClosed
	}
	if e := p.writeErr.Load(); e != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *e)
	}
	return nil
}

// Close stops accepting appends (they then fail with ErrClosed), commits the
// requests already queued, stops the goroutines, flushes the memtable (so
// that a clean stop leaves everything in checksummed tables) and closes the
// database. It is idempotent; later calls return the first call's result.
func (p *Pebble) Close() error {
	p.closeOnce.Do(func() {
		p.closeQueue()
		<-p.commitDone
		close(p.stop)
		<-p.pruneDone
		if err := p.db.Flush(); err != nil {
			p.log.Warn().Err(err).Msg("event log flush at close failed")
		} else if err := writeMarker(p.dir, p.head.Load()); err != nil {
			p.log.Warn().Err(err).Msg("event log marker not written at close")
		}
		if err := p.db.Close(); err != nil {
			p.closeErr = fmt.Errorf("store: close: %w", err)
		}
		p.log.Info().Uint64("head", p.head.Load()).Msg("event log closed")
	})
	return p.closeErr
}

// readErr maps a read failure: corruption is logged (once per call) and
// becomes ErrUnavailable, like any storage failure.
func (p *Pebble) readErr(op string, err error) error {
	switch {
	case errors.Is(err, pebble.ErrClosed):
		return ErrClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, pebble.ErrCorruption):
		return p.corrupt(err)
	}
	return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
}

// corrupt logs corruption found while running and returns it as an
// ErrUnavailable error (answered server.unavailable, never sent to clients).
func (p *Pebble) corrupt(err error) error {
	p.log.Error().Err(err).Str("dir", p.dir).Msg("event log: damaged data found while running")
	return fmt.Errorf("store: %w: %w: %w", ErrUnavailable, ErrDamaged, err)
}
