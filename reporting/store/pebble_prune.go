package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Pruner is implemented by projectors whose state expires with the history
// (journeys): Prune deletes what was last updated before the cutoff and
// returns how much it deleted. The log calls it from its pruner, never
// concurrently with a commit.
type Pruner interface {
	Prune(kv KV, before time.Time) (int, error)
}

// pruneInterval is how often the logs prune with history: every minute, or
// every quarter of the history when that is shorter (at least every 100 ms),
// so that nothing outlives the history by much more than a quarter of it.
func pruneInterval(history time.Duration) time.Duration {
	return min(pruneEvery, max(history/4, 100*time.Millisecond))
}

// pruneLoop deletes expired events, dedup keys and projections at open and
// then every minute (every quarter of the history when that is shorter, at
// least every 100 ms), until Close.
func (p *Pebble) pruneLoop() {
	defer close(p.pruneDone)
	t := time.NewTicker(pruneInterval(p.history))
	defer t.Stop()
	for {
		if _, err := p.Prune(); err != nil {
			p.log.Warn().Err(err).Msg("event log retention failed")
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// Prune deletes the events committed before now − history with their dedup
// keys (pruneChunk events per batch), then the projections a Pruner says
// expired, and returns how many events it deleted. The pruner runs it every
// minute; tests call it to prune at once.
func (p *Pebble) Prune() (int, error) {
	cutoff := p.now().Add(-p.history)
	total := 0
	for {
		select {
		case <-p.stop:
			return total, nil
		default:
		}
		n, more, err := p.pruneChunk(cutoff.UnixNano())
		total += n
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	if pr, ok := p.projector.(Pruner); ok {
		if _, err := p.pruneProjections(pr, cutoff); err != nil {
			return total, err
		}
	}
	if total > 0 {
		oldest, head := p.Bounds()
		p.log.Debug().Int("deleted", total).Uint64("oldest", oldest).Uint64("head", head).
			Msg("event log retention")
	}
	return total, nil
}

// pruneChunk deletes up to pruneChunk expired events (one range delete) and
// their dedup keys in one batch, and reports whether more may remain.
// Events are in seq order and their commit times rise with it, so the walk
// stops at the first one still retained.
func (p *Pebble) pruneChunk(cutoff int64) (n int, more bool, err error) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return 0, false, p.readErr("prune", err)
	}
	var first, last uint64
	var keys [][]byte
	ok := it.First()
	for ; ok && n < pruneChunk; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return 0, false, p.readErr("prune", err)
		}
		nanos, f, _, herr := decodeHeader(v)
		if herr == nil && nanos >= cutoff {
			break
		}
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		if n == 0 {
			first = seq
		}
		last = seq
		n++
		if herr == nil && len(f[4]) > 0 {
			keys = append(keys, dedupKey(string(f[4])))
		}
	}
	more = ok && n == pruneChunk
	if err := it.Close(); err != nil {
		return 0, false, p.readErr("prune", err)
	}
	if n == 0 {
		return 0, false, nil
	}
	b := p.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(eventKey(first), eventKey(last+1), nil); err != nil {
		return 0, false, err
	}
	for _, k := range keys {
		// The key maps to the event being deleted: a dedup key is only
		// ever written with the event that first carried it.
		if err := b.Delete(k, nil); err != nil {
			return 0, false, err
		}
	}
	// Not synced: a prune lost in a crash is done again.
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, false, fmt.Errorf("store: prune: %w", err)
	}
	p.boundsMu.Lock()
	if last+1 > p.head.Load() {
		p.oldest.Store(0)
	} else {
		p.oldest.Store(last + 1)
	}
	p.boundsMu.Unlock()
	return n, more, nil
}

// pruneProjections runs pr in a batch of its own, committed under the
// committer's lock, so that no commit reads state that is being deleted.
func (p *Pebble) pruneProjections(pr Pruner, cutoff time.Time) (int, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	b := p.db.NewIndexedBatch()
	defer b.Close()
	kv := &pebbleKV{r: b, w: b}
	n, err := pr.Prune(kv, cutoff)
	if err == nil {
		err = kv.err
	}
	if err != nil {
		return 0, fmt.Errorf("store: prune projections: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("store: prune projections: %w", err)
	}
	return n, nil
}
