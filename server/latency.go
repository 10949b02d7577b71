package server

import (
	"bytes"
	"sync/atomic"
	"time"

	"iproc/reporting/store"
)

// commitClockSize is how many recent commits the commit clock remembers:
// an event written to a socket more than this many seqs after its commit
// (a replay, or a very slow consumer) is not timed.
const commitClockSize = 1 << 14

// commitClock remembers when recent events were committed, by seq, so the
// writer of a connection can time commit-to-socket latency from the frame
// alone. One goroutine (the store's committer) marks; any number of writers
// look up, without locks.
type commitClock struct {
	slots [commitClockSize]struct {
		seq   atomic.Uint64
		nanos atomic.Int64
	}
}

// mark records that seq was committed at nanos (Unix nanoseconds).
func (cc *commitClock) mark(seq uint64, nanos int64) {
	s := &cc.slots[seq%commitClockSize]
	s.seq.Store(0) // readers seeing 0 skip the slot while it changes
	s.nanos.Store(nanos)
	s.seq.Store(seq)
}

// lookup returns when seq was committed, if it is still remembered.
func (cc *commitClock) lookup(seq uint64) (int64, bool) {
	s := &cc.slots[seq%commitClockSize]
	if s.seq.Load() != seq {
		return 0, false
	}
	n := s.nanos.Load()
	if s.seq.Load() != seq {
		return 0, false
	}
	return n, true
}

// onCommit is the store's OnCommit callback: it stamps the commit time of
// each event for the commit-to-socket histogram, then hands the batch to
// the hub.
func (s *Server) onCommit(evs []store.Event) {
	now := time.Now().UnixNano()
	for _, ev := range evs {
		s.commits.mark(ev.Seq, now)
	}
	s.sources.Committed(evs)
	s.hub.onCommit(evs)
}

// eventPrefix starts every event frame; seqField follows the name of an
// event that has a seq.
const (
	eventPrefix = `{"name":"`
	seqField    = `,"seq":`
)

// wroteFrames accounts for frames written to a socket (the writers' Wrote);
// frames with a seq up to replayedTo were queued by a replay.
func (s *Server) wroteFrames(frames [][]byte, replayedTo uint64) {
	s.metrics.framesOut.Add(float64(len(frames)))
	for _, f := range frames {
		s.wrote(f, replayedTo)
	}
}

// wrote accounts for one frame written to a socket: event frames (every
// frame that starts with a name, as protocol.EventFrame and protocol.Event
// encode them) count as delivered, and those whose seq is still in the
// commit clock have their commit-to-socket latency observed: live ones in
// iproc_commit_to_socket_seconds, replayed ones (resumeSession) apart in
// iproc_replay_to_socket_seconds, as their wait includes the client's
// time away.
func (s *Server) wrote(frame []byte, replayedTo uint64) {
	if !bytes.HasPrefix(frame, []byte(eventPrefix)) {
		return
	}
	s.metrics.deliveries.Inc()
	seq := frameSeq(frame)
	if seq == 0 {
		return
	}
	at, ok := s.commits.lookup(seq)
	if !ok {
		return
	}
	h := s.metrics.commitToSocket
	if seq <= replayedTo {
		h = s.metrics.replayToSocket
	}
	h.Observe(time.Duration(time.Now().UnixNano() - at).Seconds())
}

// frameSeq returns the seq of an event frame, or 0 when it has none: the
// digits right after the name (names are plain ASCII without quotes).
func frameSeq(frame []byte) uint64 {
	rest := frame[len(eventPrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0
	}
	rest, ok := bytes.CutPrefix(rest[end+1:], []byte(seqField))
	if !ok {
		return 0
	}
	var seq uint64
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		seq = seq*10 + uint64(c-'0')
	}
	return seq
}
