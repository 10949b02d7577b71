package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// projectionPrefix namespaces projection buckets so that they never clash
// with the log's own buckets.
const projectionPrefix = "p/"

var errReadOnly = errors.New("store: read-only view")

// boltKV is the KV over one bbolt transaction. Values returned by Get and
// passed to ForEach point into the database's memory and are valid only
// until the transaction ends: copy them to keep them.
type boltKV struct {
	tx *bolt.Tx
}

var _ KV = boltKV{}

func bucketName(bucket string) []byte {
	return []byte(projectionPrefix + bucket)
}

// Get returns the value of key in bucket, nil when either is missing.
func (kv boltKV) Get(bucket, key string) []byte {
	b := kv.tx.Bucket(bucketName(bucket))
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

// Put stores value under key in bucket, creating the bucket if needed.
func (kv boltKV) Put(bucket, key string, value []byte) error {
	if !kv.tx.Writable() {
		return errReadOnly
	}
	b, err := kv.tx.CreateBucketIfNotExists(bucketName(bucket))
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

// Delete removes key from bucket; a missing bucket or key is not an error.
func (kv boltKV) Delete(bucket, key string) error {
	if !kv.tx.Writable() {
		return errReadOnly
	}
	b := kv.tx.Bucket(bucketName(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn for every key of bucket in key order. A missing bucket
// has no keys. fn must not modify the bucket.
func (kv boltKV) ForEach(bucket string, fn func(key string, value []byte) error) error {
	b := kv.tx.Bucket(bucketName(bucket))
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil { // a nested bucket, which projections do not create
			continue
		}
		if err := fn(string(k), v); err != nil {
			return err
		}
	}
	return nil
}
