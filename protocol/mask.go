package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Echo limits (SPEC §3.1): the raw text of a frame that is not JSON is cut
// at maxRawOriginalBytes; an original longer than MaxOriginalBytes once
// encoded is replaced by {"command", "id", "truncated": true}, so a failing
// request never costs more than a few KiB of answer, whatever its size.
const (
	maxRawOriginalBytes = 1 << 10
	// MaxOriginalBytes bounds the "original" echoed in a response.
	MaxOriginalBytes = 4 << 10
)

// mask is what a secret's value becomes in an echo.
const mask = `"***"`

// isSecretName reports whether a member named name holds a secret that is
// never echoed: a password, an OpenID Connect token, or a resume token.
func isSecretName(name string) bool {
	return strings.EqualFold(name, "password") || strings.EqualFold(name, "token") || strings.EqualFold(name, "resumeToken")
}

// mayHoldSecret is a cheap test that raw has no secret member to mask:
// false means MaskPasswords may return raw unchanged.
func mayHoldSecret(raw []byte) bool {
	return containsFold(raw, "password") || containsFold(raw, "token") || bytes.Contains(raw, []byte(`\u`))
}

// MaskPasswords returns raw with the value of every "password" and "token"
// member, at any depth and in any letter case, replaced by "***". Input
// that is not valid JSON is returned as a JSON string of its masked, cut
// text (RawOriginal).
func MaskPasswords(raw []byte) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	if !mayHoldSecret(raw) {
		return json.RawMessage(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return RawOriginal(raw)
	}
	out, err := json.Marshal(maskValue(v))
	if err != nil {
		return RawOriginal(raw)
	}
	return out
}

func maskValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if isSecretName(k) {
				t[k] = "***"
				continue
			}
			t[k] = maskValue(val)
		}
	case []any:
		for i := range t {
			t[i] = maskValue(t[i])
		}
	}
	return v
}

// RawOriginal returns the text of a frame that could not be decoded as a
// JSON string for the "original" field: secrets masked as far as the text
// can be read (maskText), cut at 1 KiB on a rune boundary, invalid UTF-8
// replaced, and at most MaxOriginalBytes once encoded.
func RawOriginal(frame []byte) json.RawMessage {
	if mayHoldSecret(frame) {
		frame = maskText(frame)
	}
	cut := min(len(frame), maxRawOriginalBytes)
	for {
		for cut > 0 && cut < len(frame) && !utf8.RuneStart(frame[cut]) {
			cut--
		}
		b, _ := json.Marshal(strings.ToValidUTF8(string(frame[:cut]), "\uFFFD"))
		if len(b) <= MaxOriginalBytes {
			return b
		}
		cut /= 2 // escapes (\u0001) made it longer
	}
}

// maskText replaces, in text that need not be valid JSON (unterminated,
// trailing garbage), the value after every member name that isSecretName
// by "***": a string (terminated or not), an object or array (to its end
// or the end of the text) or a scalar.
func maskText(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] != '"' {
			out = append(out, b[i])
			i++
			continue
		}
		end := stringEnd(b, i)
		lit := b[i:end]
		out = append(out, lit...)
		i = end
		colon := skipSpace(b, i)
		if colon >= len(b) || b[colon] != ':' || !secretKey(lit) {
			continue
		}
		val := skipSpace(b, colon+1)
		out = append(out, b[i:val]...)
		out = append(out, mask...)
		i = valueEnd(b, val)
	}
	return out
}

// secretKey reports whether lit, a JSON string literal, names a secret.
func secretKey(lit []byte) bool {
	var name string
	return json.Unmarshal(lit, &name) == nil && isSecretName(name)
}

// stringEnd returns the index after the string literal starting at b[i]
// (a quote), or len(b) when it is not terminated.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index after the JSON value starting at b[i], or
// len(b) when the text ends first.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(b[j])) {
		j++
	}
	return j
}
