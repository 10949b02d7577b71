package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// Stored event layout (version 2):
//
//	[0]     version (2)
//	[1:5]   CRC-32C (Castagnoli) of everything after it, big-endian
//	[5:13]  commit time, Unix nanoseconds, big-endian
//	        then five uvarint-length-prefixed strings: name, agent id, ext,
//	        origin, dedup key
//	[rest]  data, byte for byte as appended
//
// Version 1 (written before) is the same without the checksum; it is still
// read. The dedup key is kept with its event so that retention deletes both
// together. The checksum makes an edited record an error, never an event.
const (
	codecVersion   = 2
	codecVersionV1 = 1
)

var (
	errCorrupt  = errors.New("corrupt event record")
	errChecksum = errors.New("event record fails its checksum")
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// seqKey returns the bucket key of seq: 8 bytes, big-endian, so that key
// order is seq order.
func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// encodeEvent returns the stored value of ev and, sharing the same memory,
// the data slice inside it, so the committed Event does not alias the
// caller's Record.
func encodeEvent(ev *Event, dedupKey string) (value []byte, data []byte) {
	n := 1 + 4 + 8 + 5*binary.MaxVarintLen64 + len(ev.Name) + len(ev.Meta.AgentID) +
		len(ev.Meta.Ext) + len(ev.Meta.Origin) + len(dedupKey) + len(ev.Data)
	buf := make([]byte, 0, n)
	buf = append(buf, codecVersion, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.Time.UnixNano()))
	for _, s := range [...]string{ev.Name, ev.Meta.AgentID, ev.Meta.Ext, ev.Meta.Origin, dedupKey} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	hdr := len(buf)
	buf = append(buf, ev.Data...)
	binary.BigEndian.PutUint32(buf[1:5], crc32.Checksum(buf[5:], castagnoli))
	return buf, buf[hdr:len(buf):len(buf)]
}

// decodeHeader parses the fixed part of a stored value. It returns the time
// in Unix nanoseconds, the five strings as sub-slices of v, and the offset of
// the data.
func decodeHeader(v []byte) (nanos int64, fields [5][]byte, dataOff int, err error) {
	off := 0
	switch {
	case len(v) >= 13 && v[0] == codecVersion:
		if crc32.Checksum(v[5:], castagnoli) != binary.BigEndian.Uint32(v[1:5]) {
			return 0, fields, 0, errChecksum
		}
		off = 5
	case len(v) >= 9 && v[0] == codecVersionV1:
		off = 1
	default:
		return 0, fields, 0, errCorrupt
	}
	nanos = int64(binary.BigEndian.Uint64(v[off : off+8]))
	off += 8
	for i := range fields {
		l, n := binary.Uvarint(v[off:])
		if n <= 0 || l > uint64(len(v)-off-n) {
			return 0, fields, 0, errCorrupt
		}
		off += n
		fields[i] = v[off : off+int(l) : off+int(l)]
		off += int(l)
	}
	return nanos, fields, off, nil
}

// decodeEvent decodes a stored value into an Event that owns its memory (v
// may be bbolt memory, valid only during its transaction).
func decodeEvent(seq uint64, v []byte) (Event, error) {
	nanos, f, off, err := decodeHeader(v)
	if err != nil {
		return Event{}, err
	}
	ev := Event{
		Seq:  seq,
		Time: time.Unix(0, nanos).UTC(),
		Name: string(f[0]),
		Meta: Meta{AgentID: string(f[1]), Ext: string(f[2]), Origin: string(f[3])},
	}
	if off < len(v) {
		ev.Data = append([]byte(nil), v[off:]...)
		ev.Fields = ScalarFields(ev.Data)
	}
	return ev, nil
}

// dedupValue is the dedup bucket value: first seq and commit time.
func dedupValue(seq uint64, nanos int64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, seq)
	binary.BigEndian.PutUint64(v[8:], uint64(nanos))
	return v
}
