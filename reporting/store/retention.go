package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pruneLoop deletes expired events at open and then every minute, until
// Close.
func (b *Bolt) pruneLoop() {
	defer close(b.pruneDone)
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if _, err := b.prune(); err != nil {
			b.log.Warn().Err(err).Msg("event log retention failed")
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

// prune deletes the events older than the history, with their dedup keys,
// pruneChunk events per transaction, and returns how many it deleted. Events
// are visited in seq order and the walk stops at the first one still
// retained.
func (b *Bolt) prune() (int, error) {
	cutoff := b.now().Add(-b.history).UnixNano()
	total := 0
	for {
		select {
		case <-b.stop:
			return total, nil
		default:
		}
		n, more, err := b.pruneChunk(cutoff)
		total += n
		if err != nil {
			return total, err
		}
		if n > 0 {
			b.refreshOldest()
		}
		if !more {
			break
		}
	}
	if total > 0 {
		oldest, head := b.Bounds()
		b.log.Debug().Int("deleted", total).Uint64("oldest", oldest).Uint64("head", head).
			Msg("event log retention")
	}
	return total, nil
}

// pruneChunk deletes up to pruneChunk expired events in one transaction and
// reports whether more may remain.
func (b *Bolt) pruneChunk(cutoff int64) (n int, more bool, err error) {
	err = b.db.Update(func(tx *bolt.Tx) error {
		evB := tx.Bucket(eventsBucket)
		ddB := tx.Bucket(dedupBucket)
		var seqs, keys [][]byte
		c := evB.Cursor()
		k, v := c.First()
		for ; k != nil && len(seqs) < pruneChunk; k, v = c.Next() {
			nanos, f, _, err := decodeHeader(v)
			if err == nil && nanos >= cutoff {
				break
			}
			// A corrupt record cannot be read anyway: let it go.
			seqs = append(seqs, append([]byte(nil), k...))
			if err == nil && len(f[4]) > 0 {
				keys = append(keys, append([]byte(nil), f[4]...))
			}
		}
		more = k != nil && len(seqs) == pruneChunk
		for _, k := range seqs {
			if err := evB.Delete(k); err != nil {
				return err
			}
		}
		for _, k := range keys {
			// The key maps to the event being deleted: a dedup key is only
			// ever written with the event that first carried it.
			if err := ddB.Delete(k); err != nil {
				return err
			}
		}
		n = len(seqs)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// refreshOldest sets oldest to the first retained seq, 0 when none is.
func (b *Bolt) refreshOldest() {
	b.boundsMu.Lock()
	defer b.boundsMu.Unlock()
	var oldest uint64
	_ = b.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(eventsBucket).Cursor().First(); len(k) == 8 {
			oldest = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	b.oldest.Store(oldest)
}
