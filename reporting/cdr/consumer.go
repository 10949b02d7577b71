// Package cdr consumes the dialer's CDRs from a Redis list (seed 004, SPEC
// §4.1) without losing any: each element moves atomically (BLMOVE) from the
// dialer's list to a processing list of this instance, is appended to the
// event log as a dialer.cdr event, and is removed from the processing list
// (LREM) only after the append returned, that is once it is durable. What a
// crash leaves in a processing list is taken again at start-up, and the
// processing lists of instances that stopped beating are reclaimed by the
// others. A malformed element goes to "<key>:dead" with the reason.
//
// Exactly one event per CDR: every CDR is appended with a dedup key derived
// from its content, so an element appended but not yet removed when its
// instance died produces no second event when it is taken again.
//
// Concurrency: one goroutine (Start … Stop) does all the work, in list order;
// Err and Stats may be called from any goroutine.
package cdr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"iproc/reporting/backoff"
	"iproc/reporting/notify"
	"iproc/reporting/store"
)

// DefaultKey is the list the dialer pushes CDRs to (seed 004).
const DefaultKey = "enigma:notifications:campaigns"

// Defaults of Config.
const (
	defaultBatch      = 256
	defaultBlock      = time.Second
	defaultMaxBackoff = 5 * time.Second
	heartbeatEvery    = 5 * time.Second
	heartbeatTTL      = 15 * time.Second
	appendTimeout     = 10 * time.Second
)

// Config configures a Consumer. Zero values mean defaults.
type Config struct {
	// Redis is the client of the Redis the dialer pushes to (required). The
	// caller owns it and closes it after Stop.
	Redis *redis.Client
	// Key is the dialer's list. Empty means DefaultKey.
	Key string
	// Instance names this consumer's processing list
	// ("<key>:processing:<instance>"). It must be unique among the
	// consumers of the list and should survive restarts, so that a
	// restarted instance takes its leftovers at once (required).
	Instance string
	// Log is the event log CDRs are appended to (required).
	Log store.Log
	// Batch is the most elements taken and appended at once. Zero means 256.
	Batch int
	// Block is how long one BLMOVE waits (whole seconds, at least 1s); it
	// also bounds how long Stop waits. Zero means 1s.
	Block time.Duration
	// MaxBackoff bounds the wait between reconnection attempts. Zero means 5s.
	MaxBackoff time.Duration
	// Counted, when set, is told how many elements each batch stored,
	// found duplicate or dead-lettered ("stored", "duplicate", "dead").
	Counted func(outcome string, n int)
	// Logger receives the consumer's messages.
	Logger zerolog.Logger
}

// Stats counts what the consumer did since Start.
type Stats struct {
	Stored, Duplicates, Dead uint64
}

// Consumer is the reliable CDR consumer of one instance.
type Consumer struct {
	cfg     Config
	rdb     *redis.Client
	proc    string // this instance's processing list
	dead    string
	members string // set of the consumers' instance names
	beatKey string

	stored, dups, deadN atomic.Uint64
	lastErr             atomic.Pointer[error]

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New checks cfg and returns a consumer; Start starts it.
func New(cfg Config) (*Consumer, error) {
	if cfg.Redis == nil || cfg.Log == nil || cfg.Instance == "" {
		return nil, errors.New("cdr: Redis, Log and Instance are required")
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.Batch <= 0 {
		cfg.Batch = defaultBatch
	}
	if cfg.Block < time.Second {
		cfg.Block = defaultBlock
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	c := &Consumer{
		cfg: cfg, rdb: cfg.Redis,
		proc:    ProcessingKey(cfg.Key, cfg.Instance),
		dead:    DeadKey(cfg.Key),
		members: cfg.Key + ":consumers",
		beatKey: cfg.Key + ":consumer:" + cfg.Instance,
		done:    make(chan struct{}),
	}
	notStarted := errors.New("not connected yet")
	c.lastErr.Store(&notStarted)
	return c, nil
}

// ProcessingKey is the processing list of instance for the list key.
func ProcessingKey(key, instance string) string { return key + ":processing:" + instance }

// Probe reads how many CDRs wait in the list key and how many elements its
// dead-letter list holds, in one round trip; err says why Redis could not
// be read.
func Probe(ctx context.Context, rdb *redis.Client, key string) (length, dead int64, err error) {
	var l, d *redis.IntCmd
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		l = p.LLen(ctx, key)
		d = p.LLen(ctx, DeadKey(key))
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", key, err)
	}
	return l.Val(), d.Val(), nil
}

// DeadKey is the dead-letter list for the list key.
func DeadKey(key string) string { return key + ":dead" }

// Start runs the consumer in its own goroutine until Stop.
func (c *Consumer) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
}

// Stop stops taking elements, finishes the batch in hand (its appends are
// not cut short) and returns when the goroutine has ended. It is idempotent.
func (c *Consumer) Stop() {
	c.once.Do(func() {
		if c.cancel == nil {
			close(c.done)
			return
		}
		c.cancel()
		<-c.done
	})
}

// Err returns why Redis is not usable right now, nil when the last Redis
// operation succeeded.
func (c *Consumer) Err() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns the counts since Start.
func (c *Consumer) Stats() Stats {
	return Stats{Stored: c.stored.Load(), Duplicates: c.dups.Load(), Dead: c.deadN.Load()}
}

func (c *Consumer) setErr(err error) {
	if err == nil {
		c.lastErr.Store(nil)
		return
	}
	c.lastErr.Store(&err)
}

// run reconnects with exponential back-off until ctx ends. The back-off
// starts again from 50 ms only after a run that lasted, so that a failure
// that recurs at once (the store refusing appends) is not retried in a
// tight loop.
func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	defer c.farewell()
	wait := backoff.Backoff{First: 50 * time.Millisecond, Max: c.cfg.MaxBackoff}
	for ctx.Err() == nil {
		started := time.Now()
		connected, err := c.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		c.setErr(err)
		if connected && time.Since(started) > c.cfg.MaxBackoff {
			wait.Reset()
		}
		d := wait.Next()
		c.cfg.Logger.Warn().Err(err).Dur("retry_in", d).Str("key", c.cfg.Key).Msg("CDR consumer paused")
		if !backoff.Sleep(ctx.Done(), d) {
			return
		}
	}
}

// farewell drops this consumer's heartbeat on a clean stop, so that another
// instance may reclaim what a later failure would leave.
func (c *Consumer) farewell() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.rdb.Del(ctx, c.beatKey).Err()
}

// consume takes the leftovers, then elements as they come, until ctx ends
// (nil) or Redis fails (the error). connected reports whether Redis
// answered at all.
func (c *Consumer) consume(ctx context.Context) (connected bool, err error) {
	if err := c.beat(ctx); err != nil {
		return false, err
	}
	c.setErr(nil) // Redis answers: ready, even while leftovers wait for the log
	if err := c.drain(ctx); err != nil {
		return true, err
	}
	if err := c.reclaim(ctx); err != nil {
		return true, err
	}
	c.setErr(nil)
	c.cfg.Logger.Info().Str("key", c.cfg.Key).Str("processing", c.proc).Msg("CDR consumer connected")
	lastBeat := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastBeat) >= heartbeatEvery {
			if err := c.beat(ctx); err != nil {
				return true, err
			}
			if err := c.reclaim(ctx); err != nil {
				return true, err
			}
			lastBeat = time.Now()
		}
		// No ctx here: a BLMOVE cut short could move an element after its
		// reply was abandoned; it would only wait in the processing list,
		// but Block bounds the wait anyway.
		first, err := c.rdb.BLMove(context.WithoutCancel(ctx), c.cfg.Key, c.proc, "RIGHT", "LEFT", c.cfg.Block).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return true, fmt.Errorf("blmove %s: %w", c.cfg.Key, err)
		}
		batch := []string{first}
		if c.cfg.Batch > 1 {
			more, err := moveScript.Run(context.WithoutCancel(ctx), c.rdb, []string{c.cfg.Key, c.proc}, c.cfg.Batch-1).StringSlice()
			if err != nil && !errors.Is(err, redis.Nil) {
				return true, fmt.Errorf("lmove %s: %w", c.cfg.Key, err) // what moved is in the processing list
			}
			batch = append(batch, more...)
		}
		if err := c.handle(ctx, batch); err != nil {
			return true, err
		}
	}
	return true, nil
}

// moveScript moves up to ARGV[1] elements from the right of KEYS[1] to the
// left of KEYS[2], atomically, and returns them oldest first.
var moveScript = redis.NewScript(`
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not v then break end
  out[#out + 1] = v
end
return out`)

// drain handles what the processing list holds (a crash's leftovers, or a
// batch whose LREM failed), oldest first, until it is empty.
func (c *Consumer) drain(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := c.rdb.LLen(ctx, c.proc).Result()
		if err != nil {
			return fmt.Errorf("llen %s: %w", c.proc, err)
		}
		if n == 0 {
			return nil
		}
		// The oldest elements are at the right end.
		batch, err := c.rdb.LRange(ctx, c.proc, -int64(c.cfg.Batch), -1).Result()
		if err != nil {
			return fmt.Errorf("lrange %s: %w", c.proc, err)
		}
		slices.Reverse(batch)
		c.cfg.Logger.Info().Int64("left", n).Int("taking", len(batch)).Str("processing", c.proc).Msg("CDR consumer: taking leftovers")
		if err := c.handle(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// beat marks this consumer alive for heartbeatTTL.
func (c *Consumer) beat(ctx context.Context) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.beatKey, time.Now().UTC().Format(time.RFC3339), heartbeatTTL)
		p.SAdd(ctx, c.members, c.cfg.Instance)
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// reclaim moves into this consumer's processing list the elements of
// consumers whose heartbeat expired, then handles them. Moving is atomic per
// element and dedup keys make a CDR taken twice produce one event, so
// consumers reclaiming at the same time, or the owner coming back, are safe.
func (c *Consumer) reclaim(ctx context.Context) error {
	ids, err := c.rdb.SMembers(ctx, c.members).Result()
	if err != nil {
		return fmt.Errorf("smembers %s: %w", c.members, err)
	}
	for _, id := range ids {
		if id == c.cfg.Instance {
			continue
		}
		alive, err := c.rdb.Exists(ctx, c.cfg.Key+":consumer:"+id).Result()
		if err != nil {
			return fmt.Errorf("exists: %w", err)
		}
		if alive > 0 {
			continue
		}
		other := ProcessingKey(c.cfg.Key, id)
		moved := 0
		for {
			got, err := moveScript.Run(ctx, c.rdb, []string{other, c.proc}, c.cfg.Batch).StringSlice()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("reclaim %s: %w", other, err)
			}
			moved += len(got)
			if len(got) < c.cfg.Batch {
				break
			}
		}
		if err := c.rdb.SRem(ctx, c.members, id).Err(); err != nil {
			return fmt.Errorf("srem %s: %w", c.members, err)
		}
		if moved > 0 {
			c.cfg.Logger.Warn().Str("instance", id).Int("elements", moved).Msg("CDR consumer: reclaimed the processing list of a stopped consumer")
		}
	}
	return c.drain(ctx)
}

// DedupKey is the dedup key of a CDR: "cdr:" and the SHA-256 of its
// compacted JSON. The element's content is its identity: a CDR describes one
// call attempt (internal_call_ref names the call, dial_number the number
// tried, and each tried number gets its own CDR), so two byte-identical CDRs
// are the same CDR delivered twice (an element taken again after a crash, or
// a push the dialer retried), never two calls. Keys last as long as the
// history (--history).
func DedupKey(data []byte) string {
	sum := sha256.Sum256(data)
	return "cdr:" + hex.EncodeToString(sum[:])
}

// handle stores a batch (oldest first) and then removes it from the
// processing list. Malformed elements go to the dead list instead. An error
// leaves the batch's remaining elements in the processing list, to be taken
// again.
func (c *Consumer) handle(ctx context.Context, batch []string) error {
	var recs []store.Record
	var good []string
	for _, raw := range batch {
		n, err := notify.DecodeCDR([]byte(raw))
		if err != nil {
			if err := c.deadLetter(ctx, raw, err); err != nil {
				return err
			}
			continue
		}
		recs = append(recs, store.Record{
			Name: n.Topic, Data: n.Data, DedupKey: DedupKey(n.Data),
			Fields: n.Fields, Meta: store.Meta{AgentID: n.AgentID, Ext: n.Ext},
		})
		good = append(good, raw)
	}
	if len(recs) == 0 {
		return nil
	}
	// Once taken, a batch's append is not cut short by Stop.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	res, err := c.cfg.Log.Append(actx, recs)
	cancel()
	if err != nil {
		return fmt.Errorf("append %d CDRs (they stay in %s): %w", len(recs), c.proc, err)
	}
	dups := 0
	for _, r := range res {
		if r.Duplicate {
			dups++
		}
	}
	// Counted before the removal, so that an empty processing list means
	// the counts are final.
	c.stored.Add(uint64(len(recs) - dups))
	c.dups.Add(uint64(dups))
	c.count("stored", len(recs)-dups)
	c.count("duplicate", dups)
	if dups > 0 {
		c.cfg.Logger.Info().Int("duplicates", dups).Msg("CDR consumer: CDRs already stored, not stored again")
	}
	// Durable now: acknowledge by removing them.
	wctx := context.WithoutCancel(ctx)
	_, err = c.rdb.Pipelined(wctx, func(p redis.Pipeliner) error {
		for _, raw := range good {
			p.LRem(wctx, c.proc, 1, raw)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lrem %s: %w", c.proc, err)
	}
	return nil
}

func (c *Consumer) count(outcome string, n int) {
	if c.cfg.Counted != nil && n > 0 {
		c.cfg.Counted(outcome, n)
	}
}

// deadEntry is an element of the dead list.
type deadEntry struct {
	Reason   string    `json:"reason"`
	Element  string    `json:"element,omitempty"`
	Base64   []byte    `json:"elementBase64,omitempty"` // when not valid UTF-8
	Instance string    `json:"instance"`
	Time     time.Time `json:"time"`
}

// deadLetter moves a malformed element to the dead list with the reason,
// in one transaction with its removal from the processing list.
func (c *Consumer) deadLetter(ctx context.Context, raw string, why error) error {
	e := deadEntry{Reason: why.Error(), Instance: c.cfg.Instance, Time: time.Now().UTC()}
	if utf8.ValidString(raw) {
		e.Element = raw
	} else {
		e.Base64 = []byte(raw)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	wctx := context.WithoutCancel(ctx)
	_, err = c.rdb.TxPipelined(wctx, func(p redis.Pipeliner) error {
		p.LPush(wctx, c.dead, b)
		p.LRem(wctx, c.proc, 1, raw)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead letter to %s: %w", c.dead, err)
	}
	c.deadN.Add(1)
	c.count("dead", 1)
	c.cfg.Logger.Warn().Str("dead_list", c.dead).Str("reason", e.Reason).Int("bytes", len(raw)).
		Msg("CDR consumer: malformed CDR moved to the dead list")
	return nil
}
