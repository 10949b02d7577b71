package store

import (
	"errors"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleReader is what a KV reads through: an indexed batch (which sees its
// own writes) or a snapshot.
type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// pebbleKV is the KV over an indexed batch (w set, read-write) or a snapshot
// (read-only). A read failure (corruption) is kept in err: Get then returns
// nil, and the commit or view reports it.
type pebbleKV struct {
	r   pebbleReader
	w   *pebble.Batch
	err error
}

var _ KV = (*pebbleKV)(nil)

// projectionKey is "p" bucket 0x00 key: buckets never contain 0x00, so no
// bucket's keys run into another's.
func projectionKey(bucket, key string) []byte {
	k := make([]byte, 0, 2+len(bucket)+len(key))
	k = append(k, prefixProjection)
	k = append(k, bucket...)
	k = append(k, 0)
	return append(k, key...)
}

// Get returns a copy of the value of key in bucket, nil when missing.
func (kv *pebbleKV) Get(bucket, key string) []byte {
	v, closer, err := kv.r.Get(projectionKey(bucket, key))
	if err != nil {
		if !errors.Is(err, pebble.ErrNotFound) && kv.err == nil {
			kv.err = err
		}
		return nil
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out
}

// Put stores value under key in bucket.
func (kv *pebbleKV) Put(bucket, key string, value []byte) error {
	if kv.w == nil {
		return errReadOnly
	}
	return kv.w.Set(projectionKey(bucket, key), value, nil)
}

// Delete removes key from bucket; a missing key is not an error.
func (kv *pebbleKV) Delete(bucket, key string) error {
	if kv.w == nil {
		return errReadOnly
	}
	return kv.w.Delete(projectionKey(bucket, key), nil)
}

// ForEach calls fn for every key of bucket in key order. fn must not modify
// the bucket.
func (kv *pebbleKV) ForEach(bucket string, fn func(key string, value []byte) error) error {
	lower := projectionKey(bucket, "")
	upper := append([]byte(nil), lower...)
	upper[len(upper)-1] = 1 // just after every "p" bucket 0x00 …
	it, err := kv.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(string(it.Key()[len(lower):]), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}
