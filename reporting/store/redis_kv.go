package store

import (
	"context"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"
)

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

// writeArgs returns the commit script's projection-write arguments and
// their count.
func (kv *redisKV) writeArgs() ([]any, int) {
	var args []any
	n := 0
	for bucket, w := range kv.writes {
		h := kv.hash(bucket)
		for k, v := range w {
			if v == nil {
				args = append(args, "d", h, k, "")
			} else {
				args = append(args, "h", h, k, string(v))
			}
			n++
		}
	}
	return args, n
}
