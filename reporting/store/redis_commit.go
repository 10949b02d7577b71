package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Append stores recs durably (as durable as the Redis configuration makes
// writes) as one unit and returns one Result per record. Concurrent callers
// share commits. The events reach OnCommit through the tail, possibly after
// Append returned.
func (r *Redis) Append(ctx context.Context, recs []Record) ([]Result, error) {
	return r.append(ctx, recs)
}

// commitLoop gathers the queued requests (up to maxBatch records) into one
// commit, like Bolt's, until reqs is closed and drained.
func (r *Redis) commitLoop() {
	defer close(r.commitDone)
	g := newBatcher(r.reqs, r.maxBatch)
	for g.begin() {
		g.drain()
		r.commit(g.batch)
	}
}

// commitScript applies one commit if the caller still holds the lock.
// KEYS: lock, head, log. ARGV: token, new head, dedup TTL (ms), #events,
// #dedup keys, #projection writes, then 8 values per event (id, name, data,
// agent, ext, origin, time, dedup key), 2 per dedup key (key, seq) and 4
// per projection write ("h" set or "d" delete, hash, field, value; "z" and
// "y" do the same in an ordered bucket and keep its "<hash>#order" set).
var commitScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LOCKLOST commit lock lost')
end
local ne, nd, nw = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local i = 7
for e = 1, ne do
  redis.call('XADD', KEYS[3], ARGV[i], 'n', ARGV[i+1], 'd', ARGV[i+2], 'a', ARGV[i+3],
    'x', ARGV[i+4], 'o', ARGV[i+5], 't', ARGV[i+6], 'k', ARGV[i+7])
  i = i + 8
end
for d = 1, nd do
  redis.call('SET', ARGV[i], ARGV[i+1], 'PX', ARGV[3])
  i = i + 2
end
for w = 1, nw do
  local op = ARGV[i]
  if op == 'h' or op == 'z' then
    redis.call('HSET', ARGV[i+1], ARGV[i+2], ARGV[i+3])
  else
    redis.call('HDEL', ARGV[i+1], ARGV[i+2])
  end
  if op == 'z' then
    redis.call('ZADD', ARGV[i+1] .. '#order', 0, ARGV[i+2])
  elseif op == 'y' then
    redis.call('ZREM', ARGV[i+1] .. '#order', ARGV[i+2])
  end
  i = i + 4
end
if ne > 0 then redis.call('SET', KEYS[2], ARGV[2]) end
return ne`)

// unlockScript releases the lock if the caller still holds it.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// commit writes one batch and answers its requests. As in Bolt, when the
// projector fails on a batch of several requests each is committed alone.
func (r *Redis) commit(batch []*request) {
	live := liveRequests(batch)
	if len(live) == 0 {
		return
	}
	results, err := r.commitLocked(live)
	if err != nil {
		var pe *projectError
		if errors.As(err, &pe) && len(live) > 1 {
			r.log.Warn().Err(err).Int("requests", len(live)).Msg("event log batch aborted by projector, retrying requests alone")
			for _, req := range live {
				r.commit([]*request{req})
			}
			return
		}
		r.log.Error().Err(err).Int("requests", len(live)).Msg("event log commit failed")
		werr := fmt.Errorf("store: append: %w: %w", ErrUnavailable, err)
		for _, req := range live {
			req.reply <- reply{err: werr}
		}
		return
	}
	for i, req := range live {
		req.reply <- reply{res: results[i]}
	}
}

// commitLocked takes the domain's commit lock, assigns seqs after the
// stored head, runs the projector, and applies everything in one script.
func (r *Redis) commitLocked(live []*request) ([][]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisLockWait+redisOpTimeout)
	defer cancel()
	token, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		uctx, ucancel := context.WithTimeout(context.Background(), time.Second)
		_ = unlockScript.Run(uctx, r.rdb, []string{r.key("lock")}, token).Err()
		ucancel()
	}()
	head, err := r.rdb.Get(ctx, r.key("head")).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read head: %w", err)
	}
	if tail := r.head.Load(); tail > head {
		// Redis lost data (no AOF): seqs keep rising past what was seen.
		r.log.Error().Uint64("stored_head", head).Uint64("seen", tail).Msg("event log head went back: Redis lost data")
		head = tail
	}
	// Known dedup keys, in one round trip.
	var keys []string
	for _, req := range live {
		for _, rec := range req.recs {
			if rec.DedupKey != "" {
				keys = append(keys, r.key("dedup:"+rec.DedupKey))
			}
		}
	}
	known := map[string]uint64{}
	if len(keys) > 0 {
		vals, err := r.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("read dedup keys: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				n, _ := strconv.ParseUint(s, 10, 64)
				known[keys[i]] = n
			}
		}
	}
	now := r.now()
	nanos := strconv.FormatInt(now.UnixNano(), 10)
	evTime := time.Unix(0, now.UnixNano()).UTC()
	kv := newRedisKV(ctx, r, false)
	if pf, ok := r.projector.(Prefetcher); ok {
		var keys []BucketKey
		for _, req := range live {
			for _, rec := range req.recs {
				keys = append(keys, pf.Prefetch(Event{Name: rec.Name, Data: rec.Data, Meta: rec.Meta, Fields: rec.Fields})...)
			}
		}
		kv.prefetch(keys)
	}
	var evArgs, ddArgs []any
	results := make([][]Result, len(live))
	seq := head
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = &projectError{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		for i, req := range live {
			res := make([]Result, len(req.recs))
			for j := range req.recs {
				rec := &req.recs[j]
				dk := ""
				if rec.DedupKey != "" {
					dk = r.key("dedup:" + rec.DedupKey)
					if first, ok := known[dk]; ok {
						res[j] = Result{Seq: first, Duplicate: true}
						continue
					}
				}
				seq++
				meta := rec.Meta
				if meta.Origin == "" {
					meta.Origin = r.instance
				}
				data := append([]byte(nil), rec.Data...)
				ev := Event{Seq: seq, Time: evTime, Name: rec.Name, Data: data, Meta: meta, Fields: rec.Fields}
				if len(data) == 0 {
					ev.Data = nil
				}
				if r.projector != nil {
					if err := r.projector.Project(kv, ev); err != nil {
						return &projectError{err: fmt.Errorf("seq %d %s: %w", seq, ev.Name, err)}
					}
					if kv.err != nil {
						return kv.err
					}
				}
				s := strconv.FormatUint(seq, 10)
				evArgs = append(evArgs, s+"-0", rec.Name, string(data), meta.AgentID, meta.Ext, meta.Origin, nanos, rec.DedupKey)
				if dk != "" {
					known[dk] = seq
					ddArgs = append(ddArgs, dk, s)
				}
				res[j] = Result{Seq: seq}
			}
			results[i] = res
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	wArgs, nw := kv.writeArgs()
	args := make([]any, 0, 6+len(evArgs)+len(ddArgs)+len(wArgs))
	args = append(args, token, strconv.FormatUint(seq, 10), r.history.Milliseconds(),
		len(evArgs)/8, len(ddArgs)/2, nw)
	args = append(append(append(args, evArgs...), ddArgs...), wArgs...)
	if err := commitScript.Run(ctx, r.rdb, []string{r.key("lock"), r.key("head"), r.key("log")}, args...).Err(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return results, nil
}

// lock takes the domain's commit lock, waiting up to redisLockWait, and
// returns its token.
func (r *Redis) lock(ctx context.Context) (string, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := r.instance + ":" + hex.EncodeToString(b)
	deadline := time.Now().Add(redisLockWait)
	wait := 200 * time.Microsecond
	for {
		ok, err := r.rdb.SetNX(ctx, r.key("lock"), token, redisLockTTL).Result()
		if err != nil {
			return "", fmt.Errorf("commit lock: %w", err)
		}
		if ok {
			return token, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("commit lock: held by another instance for too long")
		}
		time.Sleep(wait)
		wait = min(wait*2, 5*time.Millisecond)
	}
}
