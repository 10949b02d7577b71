package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// Timings of Run.
const (
	// probeEvery is how often the dialer's lists are read.
	probeEvery = time.Second
	// probeTimeout bounds one reading.
	probeTimeout = time.Second
	// retryEvery is how soon a change the log refused is tried again.
	retryEvery = time.Second
	// appendTimeout bounds the append of one change.
	appendTimeout = 5 * time.Second
)

// Run probes the dialer (every second, when probe is set), notices sources
// turning quiet and stores every change of status in log, until ctx ends.
func (t *Tracker) Run(ctx context.Context, log store.Log, probe func(context.Context) Probe) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nextProbe time.Time
	failing := false
	for {
		now := time.Now()
		if probe != nil && !now.Before(nextProbe) {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			p := probe(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			t.Probed(p)
			nextProbe = time.Now().Add(probeEvery)
		}
		next := t.evaluate(time.Now())
		if err := t.Publish(ctx, log); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				t.log.Warn().Err(err).Msg("source health: a change of status could not be stored yet; retrying")
			}
			failing = true
			next = earliest(next, time.Now().Add(retryEvery))
		} else {
			failing = false
		}
		if probe != nil {
			next = earliest(next, nextProbe)
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// earliest returns the earlier of a and b, a zero time meaning "never".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// evaluate computes every status at now (queueing the changes) and returns
// when the next ok source turns quiet, zero when none will.
func (t *Tracker) evaluate(now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.srcs {
		t.evaluateLocked(s, now)
	}
	return t.nextDueLocked()
}

// Publish stores the queued changes of status, oldest first, one event
// each, skipping those that the log already shows (another instance stored
// them, or the status came back before it could be stored). It stops at the
// first append that fails; what is left is tried by the next call.
func (t *Tracker) Publish(ctx context.Context, log store.Log) error {
	for {
		rec, s, sent, ok := t.nextRecord()
		if !ok {
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, appendTimeout)
		res, err := log.Append(actx, []store.Record{rec})
		cancel()
		if err != nil {
			return fmt.Errorf("store %s %s: %w", s.name, rec.Fields["status"], err)
		}
		t.mu.Lock()
		if len(s.pending) > 0 && s.pending[0] == sent {
			s.pending = s.pending[1:]
		}
		if res[0].Seq > s.stored.seq {
			s.stored = stored{status: sent.status, seq: res[0].Seq, since: sent.since}
		}
		t.mu.Unlock()
	}
}

// nextRecord returns the record of the oldest change still to be stored,
// its source and the change, dropping changes the log already shows; ok is
// false when nothing waits.
func (t *Tracker) nextRecord() (rec store.Record, s *source, c change, ok bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s = range t.srcs {
		for len(s.pending) > 0 && s.pending[0].status == s.stored.status {
			s.pending = s.pending[1:]
		}
		if len(s.pending) == 0 {
			continue
		}
		p := s.pending[0]
		st := s.statusLocked(now)
		st.Status, st.Since, st.Reason = p.status, formatTime(p.since), reason(p.status)
		data, err := json.Marshal(st)
		if err != nil { // a Status always encodes
			panic(err)
		}
		return store.Record{
			Name:     protocol.TopicSourceHealth,
			Data:     data,
			Fields:   store.ScalarFields(data),
			DedupKey: fmt.Sprintf("sourceHealth:%s:%d:%s", s.name, s.stored.seq, p.status),
		}, s, p, true
	}
	return store.Record{}, nil, change{}, false
}
