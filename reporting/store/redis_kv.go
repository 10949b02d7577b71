package store

import (
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"
)

// OrderedBuckets is implemented by projectors with buckets that are walked
// in key order from the first key and left early (an index by time, walked
// up to a cutoff). The Redis log keeps the keys of those buckets in a sorted
// set as well, so that their ForEach reads what it walks, a chunk at a
// time, instead of the whole hash; the embedded log's buckets are ordered
// anyway.
type OrderedBuckets interface {
	OrderedBuckets() []string
}

// orderedChunk is how many keys of an ordered bucket one read takes.
const orderedChunk = 1000

// BucketKey names one projection value.
type BucketKey struct{ Bucket, Key string }

// Prefetcher is implemented by projectors that can tell, before projecting,
// which keys an event will read: the Redis log then reads those of a whole
// batch in one round trip instead of one per Get.
type Prefetcher interface {
	Prefetch(ev Event) []BucketKey
}

// prefetch reads keys into the cache, one HMGET per bucket, pipelined.
func (kv *redisKV) prefetch(keys []BucketKey) {
	byBucket := map[string][]string{}
	for _, k := range keys {
		if _, ok := kv.cache[k.Bucket][k.Key]; !ok {
			byBucket[k.Bucket] = append(byBucket[k.Bucket], k.Key)
		}
	}
	if len(byBucket) == 0 {
		return
	}
	cmds := map[string]*redis.SliceCmd{}
	_, err := kv.r.rdb.Pipelined(kv.ctx, func(p redis.Pipeliner) error {
		for b, fields := range byBucket {
			cmds[b] = p.HMGet(kv.ctx, kv.hash(b), fields...)
		}
		return nil
	})
	if err != nil {
		return // Get reads them one by one (and reports the error)
	}
	for b, cmd := range cmds {
		if kv.cache[b] == nil {
			kv.cache[b] = map[string][]byte{}
		}
		for i, v := range cmd.Val() {
			if s, ok := v.(string); ok {
				kv.cache[b][byBucket[b][i]] = []byte(s)
			} else {
				kv.cache[b][byBucket[b][i]] = nil
			}
		}
	}
}

// redisKV is the KV of the Redis log: bucket b is the hash
// "iproc:<domain>:kv:<b>". Inside a commit, writes are buffered (and seen
// by later reads of the same commit) until the commit script applies them;
// a read error is kept in err and fails the commit or view.
type redisKV struct {
	ctx      context.Context
	r        *Redis
	readOnly bool
	writes   map[string]map[string][]byte // bucket → key → value; nil value = deleted
	cache    map[string]map[string][]byte // values read, nil = missing
	err      error
}

var _ KV = (*redisKV)(nil)

func newRedisKV(ctx context.Context, r *Redis, readOnly bool) *redisKV {
	return &redisKV{ctx: ctx, r: r, readOnly: readOnly, writes: map[string]map[string][]byte{}, cache: map[string]map[string][]byte{}}
}

func (kv *redisKV) hash(bucket string) string { return kv.r.key("kv:" + bucket) }

// orderKey is the sorted set of an ordered bucket's keys (all scores 0, so
// that members sort by their bytes, as Go strings do).
func orderKey(hash string) string { return hash + "#order" }

// Get returns the value of key in bucket, nil when missing.
func (kv *redisKV) Get(bucket, key string) []byte {
	if w, ok := kv.writes[bucket]; ok {
		if v, ok := w[key]; ok {
			return v
		}
	}
	if c, ok := kv.cache[bucket]; ok {
		if v, ok := c[key]; ok {
			return v
		}
	}
	v, err := kv.r.rdb.HGet(kv.ctx, kv.hash(bucket), key).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		if kv.err == nil {
			kv.err = err
		}
		return nil
	}
	if kv.cache[bucket] == nil {
		kv.cache[bucket] = map[string][]byte{}
	}
	kv.cache[bucket][key] = v
	return v
}

// Put stores value under key in bucket.
func (kv *redisKV) Put(bucket, key string, value []byte) error {
	if kv.readOnly {
		return errReadOnly
	}
	kv.set(bucket, key, append([]byte{}, value...))
	return nil
}

// Delete removes key from bucket.
func (kv *redisKV) Delete(bucket, key string) error {
	if kv.readOnly {
		return errReadOnly
	}
	kv.set(bucket, key, nil)
	return nil
}

func (kv *redisKV) set(bucket, key string, v []byte) {
	if kv.writes[bucket] == nil {
		kv.writes[bucket] = map[string][]byte{}
	}
	kv.writes[bucket][key] = v
}

// ForEach calls fn for every key of bucket in key order.
func (kv *redisKV) ForEach(bucket string, fn func(key string, value []byte) error) error {
	if kv.r.ordered[bucket] && len(kv.writes[bucket]) == 0 {
		return kv.forEachOrdered(bucket, fn)
	}
	all, err := kv.r.rdb.HGetAll(kv.ctx, kv.hash(bucket)).Result()
	if err != nil {
		if kv.err == nil {
			kv.err = err
		}
		return err
	}
	m := make(map[string][]byte, len(all))
	for k, v := range all {
		m[k] = []byte(v)
	}
	for k, v := range kv.writes[bucket] {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// forEachOrdered is ForEach of an ordered bucket without buffered writes:
// it reads the sorted set a chunk at a time with the chunk's values, so a
// walk that stops early reads little. A key in the set whose value is gone
// is skipped and dropped from the set.
func (kv *redisKV) forEachOrdered(bucket string, fn func(key string, value []byte) error) error {
	h := kv.hash(bucket)
	start := "-"
	for {
		keys, err := kv.r.rdb.ZRangeArgs(kv.ctx, redis.ZRangeArgs{Key: orderKey(h), Start: start, Stop: "+", ByLex: true, Count: orderedChunk}).Result()
		if err == nil && len(keys) > 0 {
			var vals []any
			if vals, err = kv.r.rdb.HMGet(kv.ctx, h, keys...).Result(); err == nil {
				for i, k := range keys {
					v, ok := vals[i].(string)
					if !ok {
						_ = kv.r.rdb.ZRem(kv.ctx, orderKey(h), k).Err()
						continue
					}
					if err := fn(k, []byte(v)); err != nil {
						return err
					}
				}
			}
		}
		if err != nil {
			if kv.err == nil {
				kv.err = err
			}
			return err
		}
		if len(keys) < orderedChunk {
			return nil
		}
		start = "(" + keys[len(keys)-1]
	}
}

// writeArgs returns the commit script's projection-write arguments and
// their count. Writes to ordered buckets ("z" set, "y" delete) keep the
// bucket's sorted set too.
func (kv *redisKV) writeArgs() ([]any, int) {
	var args []any
	n := 0
	for bucket, w := range kv.writes {
		h := kv.hash(bucket)
		set, del := "h", "d"
		if kv.r.ordered[bucket] {
			set, del = "z", "y"
		}
		for k, v := range w {
			if v == nil {
				args = append(args, del, h, k, "")
			} else {
				args = append(args, set, h, k, string(v))
			}
			n++
		}
	}
	return args, n
}

// indexOrdered fills the sorted set of each ordered bucket that has none
// (its hash was written before the set existed), a chunk at a time.
func (r *Redis) indexOrdered(ctx context.Context) error {
	for bucket := range r.ordered {
		h := r.key("kv:" + bucket)
		n, err := r.rdb.Exists(ctx, orderKey(h)).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		iter := r.rdb.HScan(ctx, h, 0, "", orderedChunk).Iterator()
		var members []redis.Z
		flush := func() error {
			if len(members) == 0 {
				return nil
			}
			err := r.rdb.ZAdd(ctx, orderKey(h), members...).Err()
			members = members[:0]
			return err
		}
		for i := 0; iter.Next(ctx); i++ {
			if i%2 == 0 { // HSCAN yields field, value, field, value…
				members = append(members, redis.Z{Member: iter.Val()})
			}
			if len(members) == orderedChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}
