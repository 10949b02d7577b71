package test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"iproc/protocol"
	"iproc/server"
)

// yamlEntry is one "key: value" (or "- value") line of a YAML document,
// with the keys leading to it; list items have the key "-".
type yamlEntry struct {
	path  []string
	value string
}

// readYAML reads the block-style YAML subset the protocol documents use:
// mappings, "- " sequences, one-line flow values kept as text, and "|" / ">"
// block scalars (skipped). It is enough to find names, not a YAML parser.
func readYAML(t *testing.T, file string) []yamlEntry {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	var out []yamlEntry
	path := func() []string {
		p := make([]string, len(stack))
		for i, f := range stack {
			p[i] = f.key
		}
		return p
	}
	pop := func(indent int) {
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
	}
	block := -1 // inside a block scalar whose key is at this indent
	for n, line := range strings.Split(string(b), "\n") {
		text := strings.TrimLeft(line, " ")
		indent := len(line) - len(text)
		if block >= 0 {
			if text == "" || indent > block {
				continue
			}
			block = -1
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if strings.Contains(line, "\t") {
			t.Fatalf("%s:%d: tab in YAML", file, n+1)
		}
		for strings.HasPrefix(text, "- ") {
			pop(indent)
			stack = append(stack, frame{indent, "-"})
			text, indent = text[2:], indent+2
		}
		pop(indent)
		key, value, isKey := yamlKey(text)
		if !isKey {
			out = append(out, yamlEntry{path(), unquote(text)})
			continue
		}
		stack = append(stack, frame{indent, key})
		out = append(out, yamlEntry{path(), value})
		if value == "|" || value == ">" {
			block = indent
		}
	}
	return out
}

// yamlKey splits "key: value" (value may be empty); flow values and plain
// scalars are not keys.
func yamlKey(text string) (key, value string, ok bool) {
	if strings.HasPrefix(text, "{") || strings.HasPrefix(text, "[") {
		return "", "", false
	}
	if k, ok := strings.CutSuffix(text, ":"); ok && !strings.Contains(k, ": ") {
		return unquote(k), "", true
	}
	k, v, ok := strings.Cut(text, ": ")
	if !ok {
		return "", "", false
	}
	return unquote(k), unquote(strings.TrimSpace(v)), true
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// at returns the values of the entries whose path matches pattern, where
// "*" matches any one key; keys returns the matched keys at the first "*".
func at(entries []yamlEntry, pattern ...string) (values, keys []string) {
	for _, e := range entries {
		if len(e.path) != len(pattern) {
			continue
		}
		star, match := "", true
		for i, p := range pattern {
			if p == "*" {
				if star == "" {
					star = e.path[i]
				}
				continue
			}
			if p != e.path[i] {
				match = false
				break
			}
		}
		if match {
			values, keys = append(values, e.value), append(keys, star)
		}
	}
	return values, keys
}

func sameSet(t *testing.T, what string, doc, code []string) {
	t.Helper()
	d, c := slices.Clone(doc), slices.Clone(code)
	sort.Strings(d)
	sort.Strings(c)
	d, c = slices.Compact(d), slices.Compact(c)
	if !slices.Equal(d, c) {
		t.Errorf("%s: documents say %v, code says %v", what, d, c)
	}
}

// asyncMessage is one message of asyncapi.yaml.
type asyncMessage struct {
	id, name, kind string
	examples       []string
}

func asyncMessages(t *testing.T, doc []yamlEntry) map[string]*asyncMessage {
	t.Helper()
	msgs := map[string]*asyncMessage{}
	get := func(id string) *asyncMessage {
		if msgs[id] == nil {
			msgs[id] = &asyncMessage{id: id}
		}
		return msgs[id]
	}
	vals, ids := at(doc, "components", "messages", "*", "name")
	for i, id := range ids {
		get(id).name = vals[i]
	}
	vals, ids = at(doc, "components", "messages", "*", "x-iproc-kind")
	for i, id := range ids {
		get(id).kind = vals[i]
	}
	vals, ids = at(doc, "components", "messages", "*", "examples", "-", "payload")
	for i, id := range ids {
		get(id).examples = append(get(id).examples, vals[i])
	}
	return msgs
}

// TestAsyncAPIMatchesProtocol checks protocol/asyncapi.yaml against the
// protocol package and a real server: every command, response, event, topic
// and failure code, the examples' shapes, and that the server routes every
// documented command.
func TestAsyncAPIMatchesProtocol(t *testing.T) {
	doc := readYAML(t, "../protocol/asyncapi.yaml")
	if v, _ := at(doc, "asyncapi"); len(v) != 1 || !strings.HasPrefix(v[0], "3.") {
		t.Fatalf("asyncapi version %v, want 3.x", v)
	}
	msgs := asyncMessages(t, doc)
	var commands, responses, events []string
	for _, m := range msgs {
		switch m.kind {
		case "command":
			commands = append(commands, m.name)
		case "response":
			responses = append(responses, m.name)
		case "event":
			events = append(events, m.name)
		case "failure":
		default:
			t.Errorf("message %s: x-iproc-kind %q", m.id, m.kind)
		}
		if len(m.examples) == 0 {
			t.Errorf("message %s has no example", m.id)
		}
	}
	sameSet(t, "commands", commands, protocol.Commands())
	sameSet(t, "responses", responses, protocol.Commands())
	sameSet(t, "events", events, append(protocol.Events(), protocol.Topics()...))
	codes, _ := at(doc, "components", "schemas", "FailureCode", "enum", "-")
	sameSet(t, "failure codes", codes, protocol.Codes())
	topics, _ := at(doc, "components", "schemas", "Topic", "enum", "-")
	sameSet(t, "topics", topics, protocol.Topics())

	// The channel lists every message, and every reference resolves.
	var ids []string
	for id := range msgs {
		ids = append(ids, id)
	}
	_, channelIDs := at(doc, "channels", "ws", "messages", "*", "$ref")
	sameSet(t, "channel messages", channelIDs, ids)
	for _, e := range doc {
		ref, ok := strings.CutPrefix(e.value, "#/")
		if !ok {
			continue
		}
		parts := strings.Split(ref, "/")
		if found, _ := at(doc, parts...); len(found) == 0 {
			t.Errorf("%s: $ref %s resolves to nothing", strings.Join(e.path, "."), e.value)
		}
	}

	// Examples are the frames as they travel: JSON, named like their
	// message, with documented failure codes; every code has an example.
	seenCodes := map[string]bool{}
	var requests []map[string]any
	for _, m := range msgs {
		for _, ex := range m.examples {
			var frame map[string]any
			if err := json.Unmarshal([]byte(ex), &frame); err != nil {
				t.Errorf("message %s: example is not JSON: %v", m.id, err)
				continue
			}
			switch m.kind {
			case "command":
				if frame["command"] != m.name || frame["result"] != nil {
					t.Errorf("message %s: example %v is not a %s request", m.id, frame, m.name)
				}
				requests = append(requests, frame)
			case "response", "failure":
				if r := frame["result"]; r != "success" && r != "confirm" && r != "failure" {
					t.Errorf("message %s: example result %v", m.id, r)
				}
				if m.kind == "response" && frame["command"] != m.name {
					t.Errorf("message %s: example command %v", m.id, frame["command"])
				}
				if f, ok := frame["failure"].(map[string]any); ok {
					code, _ := f["code"].(string)
					seenCodes[code] = true
					if !slices.Contains(protocol.Codes(), code) {
						t.Errorf("message %s: example failure code %q is not a protocol code", m.id, code)
					}
				}
			case "event":
				if frame["name"] != m.name {
					t.Errorf("message %s: example name %v", m.id, frame["name"])
				}
			}
		}
	}
	for _, code := range protocol.Codes() {
		if !seenCodes[code] {
			t.Errorf("failure code %s has no example", code)
		}
	}

	// A real server (bundled demo directory, so the login example works)
	// understands every documented request: none is unknown, malformed or
	// invalid. closeSession goes last; resources are the session made.
	ts := startServer(t, func(c *server.Config) { c.Directory = nil })
	c := dial(t, ts.WS)
	sort.SliceStable(requests, func(i, j int) bool {
		rank := func(r map[string]any) int {
			switch r["command"] {
			case protocol.CmdPrepareSession:
				return 0
			case protocol.CmdCloseSession:
				return 2
			}
			return 1
		}
		return rank(requests[i]) < rank(requests[j])
	})
	sid := ""
	for _, req := range requests {
		data, _ := req["data"].(map[string]any)
		resource, _ := req["resource"].(string)
		if resource != "" {
			resource = sid
		}
		cmd := req["command"].(string)
		resp := c.request(cmd, data, resource)
		if r, ok := resp["resource"].(map[string]any); ok && cmd == protocol.CmdPrepareSession {
			sid, _ = r["id"].(string)
		}
		if f, ok := resp["failure"].(map[string]any); ok {
			switch f["code"] {
			case protocol.CodeUnknownCommand, protocol.CodeMalformed, protocol.CodeInvalid:
				t.Errorf("documented request %v: %v", req, f)
			}
		}
	}
	if sid == "" {
		t.Error("the prepareSession example did not log in on the demo directory")
	}
	failure(t, c.request("notDocumented", nil, ""), protocol.CodeUnknownCommand)
}

// TestOpenAPIMatchesServer checks protocol/openapi.yaml against a real
// server: the ingest paths are exactly those the server routes (it lists
// them when asked for an unknown one), every request example is accepted,
// the other documented endpoints answer, and the error codes are protocol
// codes.
func TestOpenAPIMatchesServer(t *testing.T) {
	doc := readYAML(t, "../protocol/openapi.yaml")
	if v, _ := at(doc, "openapi"); len(v) != 1 || !strings.HasPrefix(v[0], "3.") {
		t.Fatalf("openapi version %v, want 3.x", v)
	}
	_, paths := at(doc, "paths", "*")
	var ingest []string
	for _, p := range paths {
		if strings.HasPrefix(p, "/ingest/") {
			ingest = append(ingest, p)
		}
	}
	ts := startServer(t, nil)
	status, body := post(t, ts.URL+"/ingest/not-a-path", "{}", nil)
	if status != http.StatusNotFound {
		t.Fatalf("unknown ingest path: %d", status)
	}
	msg, _ := body["error"].(map[string]any)["message"].(string)
	routed := regexp.MustCompile(`/ingest/[a-z/-]+[a-z]`).FindAllString(strings.TrimPrefix(msg, "no ingest endpoint at /ingest/not-a-path"), -1)
	sameSet(t, "ingest paths", ingest, routed)

	for _, p := range ingest {
		examples, _ := at(doc, "paths", p, "post", "requestBody", "content", "application/json", "examples", "*", "value")
		if len(examples) == 0 {
			t.Errorf("%s: no request example", p)
		}
		for _, ex := range examples {
			if status, body := post(t, ts.URL+p, ex, nil); status != http.StatusOK || body["accepted"] != true {
				t.Errorf("%s: documented example refused: %d %v", p, status, body)
			}
		}
	}
	for _, p := range paths {
		methods, _ := at(doc, "paths", p, "*")
		_, names := at(doc, "paths", p, "*")
		if len(methods) == 0 {
			t.Errorf("%s: no operation", p)
		}
		for _, m := range slices.Compact(names) {
			if m != "get" {
				continue
			}
			resp, err := http.Get(ts.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d", p, resp.StatusCode)
			}
		}
	}
	codes, _ := at(doc, "components", "schemas", "ErrorCode", "enum", "-")
	for _, c := range codes {
		if !slices.Contains(protocol.Codes(), c) {
			t.Errorf("HTTP error code %q is not a protocol code", c)
		}
	}
}
