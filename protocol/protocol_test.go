package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, frame, code, command, resource, id, data string
	}{
		{name: "full", frame: `{"command":"setState","data":{"state":"ready"},"resource":"s1","id":"7"}`, command: "setState", resource: "s1", id: `"7"`, data: `{"state":"ready"}`},
		{name: "numeric id", frame: `{"command":"ping","id":42}`, command: "ping", id: "42", data: "{}"},
		{name: "no data", frame: `{"command":"ping"}`, command: "ping", data: "{}"},
		{name: "null data", frame: `{"command":"ping","data":null}`, command: "ping", data: "{}"},
		{name: "not json", frame: `hello`, code: CodeMalformed},
		{name: "array", frame: `[1,2]`, code: CodeMalformed},
		{name: "truncated", frame: `{"command":"ping"`, code: CodeMalformed},
		{name: "empty", frame: ``, code: CodeMalformed},
		{name: "missing command", frame: `{"data":{}}`, code: CodeInvalid},
		{name: "command not string", frame: `{"command":5}`, code: CodeInvalid},
		{name: "data not object", frame: `{"command":"ping","data":[1]}`, code: CodeInvalid, command: "ping"},
		{name: "id object", frame: `{"command":"ping","id":{}}`, code: CodeInvalid, command: "ping"},
		{name: "resource number", frame: `{"command":"getState","resource":5}`, code: CodeInvalid, command: "getState"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, perr := Decode([]byte(tt.frame))
			if tt.code != "" {
				if perr == nil || perr.Code != tt.code {
					t.Fatalf("Decode(%q) error = %v, want code %s", tt.frame, perr, tt.code)
				}
				if req.Command != tt.command {
					t.Errorf("command = %q, want %q", req.Command, tt.command)
				}
				return
			}
			if perr != nil {
				t.Fatalf("Decode(%q): %v", tt.frame, perr)
			}
			if req.Command != tt.command || req.Resource != tt.resource || string(req.ID) != tt.id || string(req.Data) != tt.data {
				t.Errorf("got %q %q %s %s", req.Command, req.Resource, req.ID, req.Data)
			}
		})
	}
}

func TestMaskPasswords(t *testing.T) {
	in := `{"command":"prepareSession","data":{"agent":{"id":"1001","password":"s3cret"},"list":[{"Password":"x"}]}}`
	out := string(MaskPasswords([]byte(in)))
	if strings.Contains(out, "s3cret") || strings.Contains(out, `"x"`) {
		t.Fatalf("password not masked: %s", out)
	}
	if !strings.Contains(out, `"password":"***"`) || !strings.Contains(out, `"Password":"***"`) {
		t.Fatalf("mask missing: %s", out)
	}
	escaped := `{"data":{"agent":{"id":"1","pass\u0077ord":"s3cret"}}}`
	if out := string(MaskPasswords([]byte(escaped))); strings.Contains(out, "s3cret") {
		t.Fatalf("escaped key not masked: %s", out)
	}
	sso := `{"command":"prepareSession","data":{"agent":{"id":"1001","token":"eyJhbGciOi.eyJpc3Mi.c2ln"}}}`
	if out := string(MaskPasswords([]byte(sso))); strings.Contains(out, "eyJ") || !strings.Contains(out, `"token":"***"`) {
		t.Fatalf("token not masked: %s", out)
	}
	resume := `{"command":"resumeSession","data":{"id":"s1","resumeToken":"Qm9va3MtYXJlLWdvb2Q","since":3}}`
	if out := string(MaskPasswords([]byte(resume))); strings.Contains(out, "Qm9v") || !strings.Contains(out, `"resumeToken":"***"`) {
		t.Fatalf("resume token not masked: %s", out)
	}
	plain := `{"command":"ping","data":{"n":1.50}}`
	if out := string(MaskPasswords([]byte(plain))); out != plain {
		t.Fatalf("frame without password changed: %s", out)
	}
}

func TestFailMalformedKeepsRawText(t *testing.T) {
	frame := []byte(strings.Repeat("é", 700)) // 1400 bytes, cut at 1 KiB on a rune boundary
	req, perr := Decode(frame)
	resp := FailMalformed(&req, perr, frame)
	var s string
	if err := json.Unmarshal(resp.Original, &s); err != nil {
		t.Fatalf("original is not a JSON string: %v", err)
	}
	if len(s) > maxRawOriginalBytes || !strings.HasPrefix(s, "éé") || strings.ContainsRune(s, '\uFFFD') {
		t.Fatalf("original = %d bytes %q…", len(s), s[:10])
	}
	if resp.Command != "" || resp.Failure.Code != CodeMalformed {
		t.Fatalf("resp = %+v", resp)
	}
}

func TestEventFrame(t *testing.T) {
	got := string(EventFrame("dialer.cdr", 12, json.RawMessage(`{"ext":"5001"}`)))
	if got != `{"name":"dialer.cdr","seq":12,"data":{"ext":"5001"}}` {
		t.Fatalf("frame = %s", got)
	}
	if got := string(EventFrame("session.ended", 0, nil)); got != `{"name":"session.ended","data":{}}` {
		t.Fatalf("frame = %s", got)
	}
}

func TestDecodeData(t *testing.T) {
	req, _ := Decode([]byte(`{"command":"setState","data":{"state":5}}`))
	var v struct {
		State string `json:"state"`
	}
	perr := DecodeData(&req, &v)
	if perr == nil || perr.Code != CodeInvalid || !strings.Contains(perr.Message, "data.state") {
		t.Fatalf("DecodeData = %v", perr)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"command":"prepareSession","data":{"model":"uccx","override":false,"agent":{"id":"1001","password":"x"}},"id":"1"}`,
		`{"command":"setState","resource":"abc","data":{"state":"not_ready","reason":"7"}}`,
		`{"command":"subscribe","resource":"abc","data":{"topics":["dialer.cdr"],"filter":{"ext":5}}}`,
		`{"command":"report.calljourney","data":{"CallId":"X"}}`, `[]`, `{`, `"\xff"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, perr := Decode(frame)
		var resp Response
		if perr != nil {
			resp = FailMalformed(&req, perr, frame)
		} else {
			if req.Command == "" || !json.Valid(req.Data) {
				t.Fatalf("accepted frame with command %q data %q", req.Command, req.Data)
			}
			resp = Fail(&req, ErrInternal)
		}
		out := Marshal(resp)
		if !json.Valid(out) {
			t.Fatalf("response is not JSON: %s", out)
		}
		if strings.Contains(string(out), `"password":"`) && !strings.Contains(string(out), `"password":"***"`) {
			t.Fatalf("unmasked password in %s", out)
		}
		if strings.Contains(string(out), `"token":"`) && !strings.Contains(string(out), `"token":"***"`) {
			t.Fatalf("unmasked token in %s", out)
		}
		if !utf8.Valid(out) {
			t.Fatalf("response is not valid UTF-8: %q", out)
		}
		if len(resp.Original) > MaxOriginalBytes {
			t.Fatalf("original of %d bytes", len(resp.Original))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	frame := []byte(`{"command":"setState","resource":"7f1c0a52-9a7e-4df3-8a34-5b1e0c1d2e3f","data":{"state":"not_ready","reason":"12"},"id":"42"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, perr := Decode(frame); perr != nil {
			b.Fatal(perr)
		}
	}
}

// Echoes of malformed frames mask secrets as far as the text can be read.
func TestRawOriginalMasksSecrets(t *testing.T) {
	for _, frame := range []string{
		`{"agent":{"password":"S1"}`,
		`{"agent":{"password":"S1"}} trailing`,
		`{"agent":{"password":"S1`,
		`{"agent":{"Token" : "S1", "id":"1"`,
		`{"agent":{"pass\u0077ord":"S1"`,
		`{"agent":{"token":{"a":["S1"]},"id":"1"`,
		`{"agent":{"token":{"a":"S1`,
		`{"agent":{"password":12345S1,`,
		"\xff{\"password\":\"S1\"",
	} {
		out := RawOriginal([]byte(frame))
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("%q: original is not a JSON string: %s", frame, out)
		}
		if strings.Contains(s, "S1") || !strings.Contains(s, `"***"`) {
			t.Errorf("%q: original %q", frame, s)
		}
	}
	// What is not a secret is kept.
	if s := string(RawOriginal([]byte(`{"id":"1001","x":`))); s != `"{\"id\":\"1001\",\"x\":"` {
		t.Errorf("plain malformed frame echoed as %s", s)
	}
}

// An original is at most MaxOriginalBytes: a larger request is echoed as
// {command, id, truncated} (an id or command too long left out); control
// characters that grow when escaped do not push a raw echo past the limit.
func TestOriginalBounded(t *testing.T) {
	req, perr := Decode([]byte(`{"command":"x","id":7,"data":{"pad":"` + strings.Repeat("y", 5000) + `"}}`))
	if perr != nil {
		t.Fatal(perr)
	}
	if got := string(Fail(&req, ErrInternal).Original); got != `{"command":"x","id":7,"truncated":true}` {
		t.Errorf("original = %s", got)
	}
	small, _ := Decode([]byte(`{"command":"x","data":{"password":"p"}}`))
	if got := string(Fail(&small, ErrInternal).Original); got != `{"command":"x","data":{"password":"***"}}` {
		t.Errorf("original = %s", got)
	}
	ctl := []byte(strings.Repeat("\x01", 3000))
	if out := RawOriginal(ctl); len(out) > MaxOriginalBytes {
		t.Errorf("raw original of control characters is %d bytes", len(out))
	}
	long, _ := Decode([]byte(`{"command":"x","id":"` + strings.Repeat("i", 5000) + `"}`))
	if got := string(Fail(&long, ErrInternal).Original); got != `{"command":"x","truncated":true}` {
		t.Errorf("original with a 5 KB id = %.80s…, want {command, truncated}", got)
	}
}

// A frame with invalid UTF-8 (a binary frame) decodes with the bad bytes
// replaced, so that nothing echoed from it is invalid UTF-8.
func TestDecodeInvalidUTF8(t *testing.T) {
	req, perr := Decode([]byte("{\"command\":\"x\",\"id\":\"\xfe\",\"data\":{\"a\":\"\xff\"}}"))
	if perr != nil {
		t.Fatal(perr)
	}
	out := Marshal(Fail(&req, ErrInternal))
	if !utf8.Valid(out) {
		t.Errorf("response %q is not valid UTF-8", out)
	}
}
