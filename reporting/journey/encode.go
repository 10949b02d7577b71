package journey

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as JSON, the bytes encoding/json gives for it
// (HTML characters and U+2028/U+2029 escaped, invalid UTF-8 replaced), without
// reflection: the committer encodes a journey for every notification that
// touches one.
func appendRecord(b []byte, r *record) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"ids":`...)
	b = appendStrings(b, r.IDs)
	if len(r.Agents) > 0 {
		b = append(b, `,"agents":`...)
		b = appendStrings(b, r.Agents)
	}
	if len(r.Exts) > 0 {
		b = append(b, `,"exts":`...)
		b = appendStrings(b, r.Exts)
	}
	b = append(b, `,"updated":"`...)
	b = r.Updated.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","items":`...)
	if r.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendItem(b, &r.Items[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendItem(b []byte, it *item) []byte {
	b = append(b, `{"k":`...)
	b = appendString(b, it.Key)
	b = append(b, `,"t":`...)
	b = appendString(b, it.Kind)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, it.Start, 10)
	if it.End != 0 {
		b = append(b, `,"e":`...)
		b = strconv.AppendInt(b, it.End, 10)
	}
	if it.Seq != 0 {
		b = append(b, `,"q":`...)
		b = strconv.AppendUint(b, it.Seq, 10)
	}
	if it.Ord != 0 {
		b = append(b, `,"o":`...)
		b = strconv.AppendInt(b, int64(it.Ord), 10)
	}
	b = append(b, `,"c":`...)
	b = appendString(b, it.CallID)
	if it.Device != "" {
		b = append(b, `,"d":`...)
		b = appendString(b, it.Device)
	}
	if it.DeviceType != "" {
		b = append(b, `,"dt":`...)
		b = appendString(b, it.DeviceType)
	}
	if it.Description != "" {
		b = append(b, `,"x":`...)
		b = appendString(b, it.Description)
	}
	return append(b, '}')
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json quotes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
