package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Append stores recs durably as one unit and returns one Result per record.
// It waits for the commit of the batch its records join; if ctx ends first
// Append returns ctx's error, and the records may or may not have been
// committed (dedup keys make a retry safe), and recs may still be read by the
// committer until that commit, so their memory must not be reused. Committed
// events do not alias recs.
func (p *Pebble) Append(ctx context.Context, recs []Record) ([]Result, error) {
	return p.append(ctx, recs)
}

// commitLoop is the committer: it owns every write of events (see
// appendQueue.gather).
func (p *Pebble) commitLoop() {
	defer close(p.commitDone)
	p.gather(p.maxBatch, p.noGroup, &p.peak, p.commit)
}

// commit writes one batch (one synced write-ahead-log append), answers its
// requests, then hands the events to OnCommit. When the projector fails on a
// batch of several requests, each request is committed again alone, so that
// only the request whose events the projector refuses fails.
func (p *Pebble) commit(batch []*request) {
	// Requests whose callers already gave up are answered, not written.
	live := liveRequests(batch)
	if len(live) == 0 {
		return
	}
	p.writeMu.Lock()
	results, events, err := p.write(live)
	p.writeMu.Unlock()
	if err != nil {
		var pe *projectError
		if errors.As(err, &pe) && len(live) > 1 {
			p.log.Warn().Err(err).Int("requests", len(live)).Msg("event log batch aborted by projector, retrying requests alone")
			for _, req := range live {
				p.commit([]*request{req})
			}
			return
		}
		p.failed(live, err)
		return
	}
	p.writeErr.Store(nil)
	if len(events) > 0 {
		p.head.Store(events[len(events)-1].Seq)
		p.boundsMu.Lock()
		if p.oldest.Load() == 0 {
			p.oldest.Store(events[0].Seq)
		}
		p.boundsMu.Unlock()
	}
	p.peak = p.inflight.Load() // the appenders of this batch and those queued behind it
	// Acknowledged right after the durable write; delivery follows, in seq
	// order, from this one goroutine.
	for i, req := range live {
		req.reply <- reply{res: results[i]}
	}
	if len(events) > 0 && p.onCommit != nil {
		p.onCommit(events)
	}
}

// write builds the batch of live's records (events, dedup keys, head and the
// projectors' writes) and commits it synced.
func (p *Pebble) write(live []*request) (results [][]Result, events []Event, err error) {
	nanos := p.now().UnixNano()
	evTime := time.Unix(0, nanos).UTC() // exactly what Read decodes
	b := p.db.NewIndexedBatch()
	defer b.Close()
	kv := &pebbleKV{r: b, w: b}
	head := p.head.Load()
	seq := head
	results = make([][]Result, len(live))
	err = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &projectError{err: fmt.Errorf("panic: %v", r)}
			}
		}()
		for i, req := range live {
			res := make([]Result, len(req.recs))
			for j := range req.recs {
				rec := &req.recs[j]
				if rec.DedupKey != "" {
					// The batch is indexed: a key set earlier in it is seen
					// here, so a key repeated within the batch is caught too.
					v, closer, err := b.Get(dedupKey(rec.DedupKey))
					if err == nil {
						first, short := uint64(0), len(v) < 8
						if !short {
							first = binary.BigEndian.Uint64(v)
						}
						_ = closer.Close()
						if short {
							return fmt.Errorf("dedup key %q: %w", rec.DedupKey, errCorrupt)
						}
						res[j] = Result{Seq: first, Duplicate: true}
						continue
					}
					if !errors.Is(err, pebble.ErrNotFound) {
						return err
					}
				}
				seq++
				ev := Event{Seq: seq, Time: evTime, Name: rec.Name, Meta: rec.Meta, Fields: rec.Fields}
				val, data := encodeEvent(&Event{Seq: seq, Time: evTime, Name: rec.Name, Data: rec.Data, Meta: rec.Meta}, rec.DedupKey)
				if len(data) > 0 {
					ev.Data = data
				}
				if err := b.Set(eventKey(seq), val, nil); err != nil {
					return err
				}
				if rec.DedupKey != "" {
					if err := b.Set(dedupKey(rec.DedupKey), dedupValue(seq, nanos), nil); err != nil {
						return err
					}
				}
				if p.projector != nil {
					if err := p.projector.Project(kv, ev); err != nil {
						return &projectError{err: fmt.Errorf("seq %d %s: %w", seq, ev.Name, err)}
					}
					if kv.err != nil {
						return kv.err
					}
				}
				events = append(events, ev)
				res[j] = Result{Seq: seq}
			}
			results[i] = res
		}
		return nil
	}()
	if err != nil {
		return nil, nil, err
	}
	if seq != head {
		var hv [8]byte
		binary.BigEndian.PutUint64(hv[:], seq)
		if err := b.Set(pebbleHeadKey, hv[:], nil); err != nil {
			return nil, nil, err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, nil, err
	}
	return results, events, nil
}

// failed answers every request of a batch that was not committed; nothing of
// it was stored and head stays where it was.
func (p *Pebble) failed(batch []*request, err error) {
	var pe *projectError
	switch {
	case errors.As(err, &pe):
		p.log.Error().Err(err).Int("requests", len(batch)).Msg("event log commit aborted by projector")
	case errors.Is(err, pebble.ErrCorruption), errors.Is(err, errCorrupt):
		err = p.corrupt(err)
		p.writeErr.Store(&err)
	default:
		p.writeErr.Store(&err)
		p.log.Error().Err(err).Int("requests", len(batch)).Msg("event log commit failed")
	}
	werr := fmt.Errorf("store: append: %w: %w", ErrUnavailable, err)
	for _, req := range batch {
		req.reply <- reply{err: werr}
	}
}
