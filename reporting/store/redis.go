package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"iproc/reporting/backoff"
)

// RedisConfig configures the Redis log. Zero values mean defaults.
type RedisConfig struct {
	// Client is the Redis client (required). The caller owns it and closes
	// it after Close. Standalone Redis (or Sentinel): the commit script
	// touches keys it computes.
	Client *redis.Client
	// Domain is the instance domain; every key starts with
	// "iproc:<domain>:" (required).
	Domain string
	// Instance names this instance: it is each appended event's
	// Meta.Origin (when the record has none) and its heartbeat (required).
	Instance string
	// History is the retention of events and dedup keys. Zero means 24h.
	History time.Duration
	// MaxBatch is the most records per group commit. Zero means 4096.
	MaxBatch int
	// Projector, when set, is called for each new (non-duplicate) event,
	// in seq order, while the commit holds the domain's commit lock; its
	// writes are applied in the same atomic script as the events.
	Projector Projector
	// OnCommit, when set, is called with the events of every instance of
	// the domain, in seq order, as this instance's tail of the stream reads
	// them. It is called from one goroutine and must be quick.
	OnCommit func([]Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the log's own messages.
	Log zerolog.Logger
}

// Timings of the Redis log.
const (
	redisLockTTL     = 5 * time.Second
	redisLockWait    = 10 * time.Second
	redisTailBlock   = time.Second
	redisTailCount   = 1000
	redisBeatEvery   = 2 * time.Second
	redisAliveWithin = 10 * time.Second
	redisOpTimeout   = 5 * time.Second
)

// Redis is the event log shared by the instances of a domain: a Redis
// Stream whose entry ids are the seqs ("<seq>-0"), dedup keys with a TTL,
// and projection buckets as hashes. Appends are batched by one committer
// goroutine (group commit); a commit takes the domain's commit lock, runs
// the projector against the shared hashes, then writes events, dedup keys,
// projection changes and the head in one Lua script that first checks the
// lock is still held, so seqs rise strictly across the domain. A tail
// goroutine reads the stream (XREAD BLOCK) and hands every instance's
// events to OnCommit in seq order; a third goroutine beats (the instance
// is alive) and trims expired events.
type Redis struct {
	rdb       *redis.Client
	prefix    string
	instance  string
	history   time.Duration
	maxBatch  int
	projector Projector
	ordered   map[string]bool // the projector's OrderedBuckets
	onCommit  func([]Event)
	now       func() time.Time
	log       zerolog.Logger

	appendQueue // Append's requests to the committer

	head    atomic.Uint64 // the highest seq the tail handed to OnCommit
	oldest  atomic.Uint64
	tailErr atomic.Pointer[error]
	alive   atomic.Pointer[map[string]bool]

	stop       chan struct{}
	commitDone chan struct{}
	tailDone   chan struct{}
	beatDone   chan struct{}
	closeOnce  sync.Once
}

var _ Log = (*Redis)(nil)

// OpenRedis connects, finds the head, and starts the committer, the tail
// and the heartbeat. Events committed before it opened are not handed to
// OnCommit (they are read with Read).
func OpenRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Client == nil || cfg.Domain == "" || cfg.Instance == "" {
		return nil, errors.New("store: redis: Client, Domain and Instance are required")
	}
	setDefaults(&cfg.History, &cfg.MaxBatch, &cfg.Now)
	r := &Redis{
		rdb: cfg.Client, prefix: "iproc:" + cfg.Domain + ":", instance: cfg.Instance,
		history: cfg.History, maxBatch: cfg.MaxBatch, projector: cfg.Projector,
		onCommit: cfg.OnCommit, now: cfg.Now, log: cfg.Log,
		appendQueue: newAppendQueue(),
		stop:        make(chan struct{}),
		commitDone:  make(chan struct{}),
		tailDone:    make(chan struct{}),
		beatDone:    make(chan struct{}),
	}
	if ob, ok := cfg.Projector.(OrderedBuckets); ok {
		r.ordered = map[string]bool{}
		for _, b := range ob.OrderedBuckets() {
			r.ordered[b] = true
		}
	}
	// Indexing a bucket written before its sorted set existed takes one
	// pass over it, once.
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err := r.indexOrdered(ictx)
	icancel()
	if err != nil {
		return nil, fmt.Errorf("store: redis: open: index ordered buckets: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
	defer cancel()
	head, err := r.storedHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: redis: open: %w", err)
	}
	r.head.Store(head)
	r.refreshOldest(ctx)
	if err := r.beat(ctx); err != nil {
		return nil, fmt.Errorf("store: redis: open: %w", err)
	}
	oldest, _ := r.Bounds()
	r.log.Info().Str("domain", cfg.Domain).Str("instance", cfg.Instance).Uint64("oldest", oldest).
		Uint64("head", head).Msg("event log opened (redis)")
	go r.commitLoop()
	go r.tailLoop(head)
	go r.beatLoop()
	return r, nil
}

func (r *Redis) key(name string) string { return r.prefix + name }

// storedHead returns the highest committed seq: the head key, or the last
// stream entry if higher.
func (r *Redis) storedHead(ctx context.Context) (uint64, error) {
	var head uint64
	v, err := r.rdb.Get(ctx, r.key("head")).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	head = v
	last, err := r.rdb.XRevRangeN(ctx, r.key("log"), "+", "-", 1).Result()
	if err != nil {
		return 0, err
	}
	if len(last) == 1 {
		head = max(head, idSeq(last[0].ID))
	}
	return head, nil
}

// idSeq is the seq of a stream entry id "<seq>-0".
func idSeq(id string) uint64 {
	s, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func (r *Redis) refreshOldest(ctx context.Context) {
	first, err := r.rdb.XRangeN(ctx, r.key("log"), "-", "+", 1).Result()
	if err != nil {
		return
	}
	if len(first) == 0 {
		r.oldest.Store(0)
		return
	}
	r.oldest.Store(idSeq(first[0].ID))
}

// Read returns up to limit events with seq > after, in seq order. A limit
// that is not positive or above 10000 means 10000.
func (r *Redis) Read(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if r.isClosed.Load() {
		return nil, ErrClosed
	}
	if limit <= 0 || limit > maxReadLimit {
		limit = maxReadLimit
	}
	msgs, err := r.rdb.XRangeN(ctx, r.key("log"), strconv.FormatUint(after+1, 10)+"-0", "+", int64(limit)).Result()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("store: read: %w: %w", ErrUnavailable, err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeMessage(m))
	}
	return out, nil
}

// decodeMessage turns a stream entry into an Event.
func decodeMessage(m redis.XMessage) Event {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	nanos, _ := strconv.ParseInt(str("t"), 10, 64)
	ev := Event{
		Seq: idSeq(m.ID), Time: time.Unix(0, nanos).UTC(), Name: str("n"),
		Meta: Meta{AgentID: str("a"), Ext: str("x"), Origin: str("o")},
	}
	if d := str("d"); d != "" {
		ev.Data = []byte(d)
		ev.Fields = ScalarFields(ev.Data)
	}
	return ev
}

// Bounds returns the oldest retained seq and the head: the highest seq this
// instance's tail has handed to OnCommit, so that everything above it is
// still to be delivered live.
func (r *Redis) Bounds() (oldest, head uint64) {
	return r.oldest.Load(), r.head.Load()
}

// View runs fn over the shared projection state. It is not a snapshot:
// each Get reads the current value.
func (r *Redis) View(fn func(kv KV) error) error {
	if r.isClosed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
	defer cancel()
	kv := newRedisKV(ctx, r, true)
	err := fn(kv)
	if kv.err != nil {
		return fmt.Errorf("store: view: %w: %w", ErrUnavailable, kv.err)
	}
	return err
}

// Ping reports whether the log is open and its tail reads the stream.
func (r *Redis) Ping() error {
	if r.isClosed.Load() {
		return ErrClosed
	}
	if p := r.tailErr.Load(); p != nil {
		return fmt.Errorf("%w: redis: %w", ErrUnavailable, *p)
	}
	return nil
}

// Committed returns the highest seq committed in the domain by any
// instance (this instance's tail may not have read it yet).
func (r *Redis) Committed(ctx context.Context) (uint64, error) {
	v, err := r.rdb.Get(ctx, r.key("head")).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("store: committed: %w: %w", ErrUnavailable, err)
	}
	return v, nil
}

// Alive reports whether instance beat within the last 10 s (as last seen
// by this instance's heartbeat, refreshed every 2 s).
func (r *Redis) Alive(instance string) bool {
	if instance == r.instance {
		return true
	}
	m := r.alive.Load()
	return m != nil && (*m)[instance]
}

// Close stops accepting appends, commits those queued, and stops the
// goroutines. The client stays open. It is idempotent.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.closeQueue()
		<-r.commitDone
		close(r.stop)
		<-r.tailDone
		<-r.beatDone
		r.log.Info().Uint64("head", r.head.Load()).Msg("event log closed (redis)")
	})
	return nil
}

// tailLoop reads the stream after `from` and hands the events to
// OnCommit, reconnecting with back-off, until Close.
func (r *Redis) tailLoop(from uint64) {
	defer close(r.tailDone)
	last := strconv.FormatUint(from, 10) + "-0"
	var wait backoff.Backoff // 50 ms doubling to 5 s
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		res, err := r.rdb.XRead(context.Background(), &redis.XReadArgs{
			Streams: []string{r.key("log"), last}, Count: redisTailCount, Block: redisTailBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			r.tailErr.Store(nil)
			continue
		}
		if err != nil {
			r.tailErr.Store(&err)
			d := wait.Next()
			r.log.Warn().Err(err).Dur("retry_in", d).Msg("event log tail: Redis unavailable")
			if !backoff.Sleep(r.stop, d) {
				return
			}
			continue
		}
		r.tailErr.Store(nil)
		wait.Reset()
		for _, st := range res {
			if len(st.Messages) == 0 {
				continue
			}
			evs := make([]Event, 0, len(st.Messages))
			for _, m := range st.Messages {
				evs = append(evs, decodeMessage(m))
			}
			last = st.Messages[len(st.Messages)-1].ID
			if r.oldest.Load() == 0 {
				r.oldest.Store(evs[0].Seq)
			}
			if r.onCommit != nil {
				r.onCommit(evs)
			}
			r.head.Store(evs[len(evs)-1].Seq)
		}
	}
}

// beatLoop records this instance as alive, refreshes the live set and
// trims expired events, until Close.
func (r *Redis) beatLoop() {
	defer close(r.beatDone)
	t := time.NewTicker(redisBeatEvery)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-r.stop:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = r.rdb.ZRem(ctx, r.key("instances"), r.instance).Err()
			cancel()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
		if err := r.beat(ctx); err != nil {
			r.log.Debug().Err(err).Msg("event log heartbeat failed")
		}
		if time.Since(lastPrune) >= pruneInterval(r.history) {
			lastPrune = time.Now()
			if n, err := r.prune(ctx); err != nil {
				r.log.Warn().Err(err).Msg("event log retention failed")
			} else if n > 0 {
				r.log.Debug().Int("deleted", n).Msg("event log retention")
			}
		}
		cancel()
	}
}

// beat marks this instance alive and reads which instances are.
func (r *Redis) beat(ctx context.Context) error {
	now := r.now()
	key := r.key("instances")
	var live *redis.StringSliceCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: r.instance})
		p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10))
		live = p.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: strconv.FormatInt(now.Add(-redisAliveWithin).UnixMilli(), 10), Max: "+inf"})
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	m := map[string]bool{}
	for _, id := range live.Val() {
		m[id] = true
	}
	r.alive.Store(&m)
	return nil
}

// prune trims the events older than the history, 1000 at a time, then
// deletes the projections a Pruner says expired (journeys); it returns how
// many went. Dedup keys expire by themselves (their TTL is the history).
// Of the domain's instances, the first to get to it in each interval
// prunes; the others skip that round.
func (r *Redis) prune(ctx context.Context) (int, error) {
	// One instance of the domain prunes per interval: the others skip.
	mine, err := r.rdb.SetNX(ctx, r.key("prune"), r.instance, pruneInterval(r.history)).Result()
	if err != nil || !mine {
		return 0, err
	}
	before := r.now().Add(-r.history)
	n, err := r.pruneEvents(ctx, before.UnixNano())
	if err != nil {
		return n, err
	}
	m, err := r.pruneProjections(ctx, before)
	return n + m, err
}

// pruneProjections runs the projector's Prune under the commit lock, so
// that no commit writes the same projections meanwhile, and applies its
// deletions in one script that checks the lock.
func (r *Redis) pruneProjections(ctx context.Context, before time.Time) (int, error) {
	pr, ok := r.projector.(Pruner)
	if !ok {
		return 0, nil
	}
	token, err := r.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		uctx, ucancel := context.WithTimeout(context.Background(), time.Second)
		_ = unlockScript.Run(uctx, r.rdb, []string{r.key("lock")}, token).Err()
		ucancel()
	}()
	kv := newRedisKV(ctx, r, false)
	n, err := pr.Prune(kv, before)
	if err == nil {
		err = kv.err
	}
	if err != nil {
		return 0, fmt.Errorf("prune projections: %w", err)
	}
	wArgs, nw := kv.writeArgs()
	if nw == 0 {
		return n, nil
	}
	args := append([]any{token, "0", r.history.Milliseconds(), 0, 0, nw}, wArgs...)
	if err := commitScript.Run(ctx, r.rdb, []string{r.key("lock"), r.key("head"), r.key("log")}, args...).Err(); err != nil {
		return 0, fmt.Errorf("prune projections: %w", err)
	}
	return n, nil
}

// pruneEvents trims the events older than cutoff (Unix nanoseconds), 1000
// at a time, and returns how many went.
func (r *Redis) pruneEvents(ctx context.Context, cutoff int64) (int, error) {
	total := 0
	for range 100 {
		msgs, err := r.rdb.XRangeN(ctx, r.key("log"), "-", "+", pruneChunk).Result()
		if err != nil {
			return total, err
		}
		keep := ""
		n := 0
		for _, m := range msgs {
			if ev := decodeMessage(m); ev.Time.UnixNano() >= cutoff {
				keep = m.ID
				break
			}
			n++
		}
		if n == 0 {
			break
		}
		if keep == "" { // the whole chunk is expired
			keep = strconv.FormatUint(idSeq(msgs[len(msgs)-1].ID)+1, 10) + "-0"
		}
		if err := r.rdb.XTrimMinID(ctx, r.key("log"), keep).Err(); err != nil {
			return total, err
		}
		total += n
		r.refreshOldest(ctx)
		if n < len(msgs) || len(msgs) < pruneChunk {
			break
		}
	}
	return total, nil
}
