package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// request is one Append waiting for the committer.
type request struct {
	ctx  context.Context
	recs []Record
	// reply has room for the one answer, so the committer never blocks on
	// a caller that gave up.
	reply chan reply
}

type reply struct {
	res []Result
	err error
}

// projectError marks a projector failure, which aborts a commit without
// meaning that the disk is unwritable.
type projectError struct{ err error }

func (e *projectError) Error() string { return "projector: " + e.err.Error() }
func (e *projectError) Unwrap() error { return e.err }

// Append stores recs durably as one unit and returns one Result per record.
// It waits for the commit of the batch its records join; if ctx ends first
// Append returns ctx's error, and the records may or may not have been
// committed (dedup keys make a retry safe), and recs may still be read by the
// committer until that commit, so their memory must not be reused. Committed
// events do not alias recs.
func (b *Bolt) Append(ctx context.Context, recs []Record) ([]Result, error) {
	return b.append(ctx, recs)
}

// commitLoop is the committer: it owns every write of events (see
// appendQueue.gather).
func (b *Bolt) commitLoop() {
	defer close(b.commitDone)
	b.gather(b.maxBatch, b.noGroup, &b.peak, b.commit)
}

// commit writes one batch in one transaction and answers its requests. When
// the projector fails on a batch of several requests, each request is
// committed again in a transaction of its own, so that only the request
// whose events the projector refuses fails.
func (b *Bolt) commit(batch []*request) {
	// Requests whose callers already gave up are answered, not written.
	live := liveRequests(batch)
	if len(live) == 0 {
		return
	}
	now := b.now()
	nanos := now.UnixNano()
	evTime := time.Unix(0, nanos).UTC() // exactly what Read decodes
	results := make([][]Result, len(live))
	var events []Event
	head := b.head.Load()

	err := b.db.Update(func(tx *bolt.Tx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &projectError{err: fmt.Errorf("panic: %v", r)}
			}
		}()
		evB := tx.Bucket(eventsBucket)
		// Events are keyed by rising seq, so pages split only at the end:
		// filling them whole halves the pages written for the same events.
		evB.FillPercent = 1.0
		ddB := tx.Bucket(dedupBucket)
		kv := boltKV{tx: tx}
		seq := head
		for i, req := range live {
			res := make([]Result, len(req.recs))
			for j := range req.recs {
				rec := &req.recs[j]
				// Keys put earlier in this transaction are visible to Get,
				// so a key repeated within the batch is caught here too.
				if rec.DedupKey != "" {
					if v := ddB.Get([]byte(rec.DedupKey)); len(v) >= 8 {
						res[j] = Result{Seq: binary.BigEndian.Uint64(v), Duplicate: true}
						continue
					}
				}
				seq++
				ev := Event{Seq: seq, Time: evTime, Name: rec.Name, Data: rec.Data, Meta: rec.Meta, Fields: rec.Fields}
				val, data := encodeEvent(&ev, rec.DedupKey)
				ev.Data = data
				if len(data) == 0 {
					ev.Data = nil
				}
				if err := evB.Put(seqKey(seq), val); err != nil {
					return err
				}
				if rec.DedupKey != "" {
					if err := ddB.Put([]byte(rec.DedupKey), dedupValue(seq, nanos)); err != nil {
						return err
					}
				}
				if b.projector != nil {
					if err := b.projector.Project(kv, ev); err != nil {
						return &projectError{err: fmt.Errorf("seq %d %s: %w", seq, ev.Name, err)}
					}
				}
				events = append(events, ev)
				res[j] = Result{Seq: seq}
			}
			results[i] = res
		}
		if seq != head {
			if err := tx.Bucket(metaBucket).Put(headKey, seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var pe *projectError
		if errors.As(err, &pe) && len(live) > 1 {
			// One request's events broke the projector: commit the requests
			// one by one so that only the culprit fails.
			b.log.Warn().Err(err).Int("requests", len(live)).Msg("event log batch aborted by projector, retrying requests alone")
			for _, req := range live {
				b.commit([]*request{req})
			}
			return
		}
		b.failed(live, err)
		return
	}
	b.writeErr.Store(nil)
	if len(events) > 0 {
		b.head.Store(events[len(events)-1].Seq)
		b.boundsMu.Lock()
		if b.oldest.Load() == 0 {
			b.oldest.Store(events[0].Seq)
		}
		b.boundsMu.Unlock()
		if b.onCommit != nil {
			b.onCommit(events)
		}
	}
	b.peak = b.inflight.Load() // the appenders of this batch and those queued behind it
	for i, req := range live {
		req.reply <- reply{res: results[i]}
	}
}

// failed answers every request of a batch whose transaction failed. Nothing
// of the batch was stored; head stays where the database says it is.
func (b *Bolt) failed(batch []*request, err error) {
	var pe *projectError
	if errors.As(err, &pe) {
		b.log.Error().Err(err).Int("requests", len(batch)).Msg("event log commit aborted by projector")
	} else {
		b.writeErr.Store(&err)
		b.log.Error().Err(err).Int("requests", len(batch)).Msg("event log commit failed")
	}
	// The transaction was rolled back, so the stored head is unchanged; read
	// it back in case memory and disk ever disagree.
	_ = b.db.View(func(tx *bolt.Tx) error {
		var head uint64
		if v := tx.Bucket(metaBucket).Get(headKey); len(v) == 8 {
			head = binary.BigEndian.Uint64(v)
		}
		if k, _ := tx.Bucket(eventsBucket).Cursor().Last(); len(k) == 8 {
			head = max(head, binary.BigEndian.Uint64(k))
		}
		b.head.Store(head)
		return nil
	})
	werr := fmt.Errorf("store: append: %w: %w", ErrUnavailable, err)
	for _, req := range batch {
		req.reply <- reply{err: werr}
	}
}
