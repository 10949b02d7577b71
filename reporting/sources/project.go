package sources

import (
	"encoding/binary"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// bucket holds, per source, when it was last seen ("seen/<source>": Unix
// nanoseconds and seq, 16 bytes) and its latest status event
// ("status/<source>": seq, Unix nanoseconds of since, then the status), so
// that a restarted instance knows both without reading the log.
const bucket = "sources"

// Projector keeps the bucket up to date in the commit of the events.
type Projector struct{}

// Project implements store.Projector.
func (Projector) Project(kv store.KV, ev store.Event) error {
	if ev.Name == protocol.TopicSourceHealth {
		name, status, since := healthFields(ev)
		if name == "" {
			return nil
		}
		v := make([]byte, 16, 16+len(status))
		binary.BigEndian.PutUint64(v, ev.Seq)
		binary.BigEndian.PutUint64(v[8:], uint64(unixNano(since)))
		return kv.Put(bucket, "status/"+name, append(v, status...))
	}
	name, ok := Of(ev.Name)
	if !ok {
		return nil
	}
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], uint64(unixNano(ev.Time)))
	binary.BigEndian.PutUint64(v[8:], ev.Seq)
	return kv.Put(bucket, "seen/"+name, v[:])
}

// Restore sets what the projection remembers: when each source was last
// seen and its latest stored status, which becomes the status observed
// until the next evaluation. Call it once, at start-up.
func (t *Tracker) Restore(kv store.KV) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.srcs {
		if v := kv.Get(bucket, "seen/"+s.name); len(v) == 16 {
			if seen := fromUnixNano(int64(binary.BigEndian.Uint64(v))); seen.After(s.lastSeen) {
				s.lastSeen = seen
			}
		}
		// Events committed before Restore (a shared log's tail starts at
		// once) are newer than the projection read: they win.
		if v := kv.Get(bucket, "status/"+s.name); len(v) > 16 && binary.BigEndian.Uint64(v) > s.stored.seq {
			since := fromUnixNano(int64(binary.BigEndian.Uint64(v[8:])))
			s.stored = stored{status: string(v[16:]), seq: binary.BigEndian.Uint64(v), since: since}
			if len(s.pending) == 0 {
				s.observed, s.observedSince = s.stored.status, since
			}
		}
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
