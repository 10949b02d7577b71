package journey

import (
	"errors"
	"slices"
	"sort"
)

// memKV is an in-memory store.KV for tests.
type memKV struct {
	buckets map[string]map[string][]byte
	puts    int
	failPut bool
}

func newKV() *memKV { return &memKV{buckets: make(map[string]map[string][]byte)} }

func (m *memKV) Get(bucket, key string) []byte {
	v, ok := m.buckets[bucket][key]
	if !ok {
		return nil
	}
	return slices.Clone(v)
}

func (m *memKV) Put(bucket, key string, value []byte) error {
	if m.failPut {
		return errors.New("disk full")
	}
	b := m.buckets[bucket]
	if b == nil {
		b = make(map[string][]byte)
		m.buckets[bucket] = b
	}
	b[key] = slices.Clone(value)
	m.puts++
	return nil
}

func (m *memKV) Delete(bucket, key string) error {
	delete(m.buckets[bucket], key)
	return nil
}

func (m *memKV) ForEach(bucket string, fn func(key string, value []byte) error) error {
	keys := make([]string, 0, len(m.buckets[bucket]))
	for k := range m.buckets[bucket] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, slices.Clone(m.buckets[bucket][k])); err != nil {
			return err
		}
	}
	return nil
}

func (m *memKV) count(bucket string) int { return len(m.buckets[bucket]) }
