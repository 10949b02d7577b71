package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decodeMap parses JSON with numbers kept as json.Number.
func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// edit returns sample with the given fields set (a nil value deletes the
// field), re-encoded.
func edit(t *testing.T, sample string, set map[string]any) string {
	t.Helper()
	m := decodeMap(t, []byte(sample))
	for k, v := range set {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantError checks err is an *Error with code and exactly fields, and that
// the message names each field.
func wantError(t *testing.T, err error, code string, fields ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error %s %v", err, err, code, fields)
	}
	if e.Code != code {
		t.Errorf("code = %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if len(fields) == 0 {
		fields = nil
	}
	if !slices.Equal(e.Fields, fields) {
		t.Errorf("fields = %q, want %q (message %q)", e.Fields, fields, e.Message)
	}
	for _, f := range fields {
		if !strings.Contains(e.Message, f+": ") {
			t.Errorf("message %q does not name %s", e.Message, f)
		}
	}
	if !strings.HasPrefix(e.Error(), code+": ") {
		t.Errorf("Error() = %q", e.Error())
	}
	return e
}

// wantSame checks data holds every field of sample unchanged.
func wantSame(t *testing.T, data json.RawMessage, sample string, extra map[string]any) {
	t.Helper()
	want := decodeMap(t, []byte(sample))
	for k, v := range extra {
		want[k] = v
	}
	if got := decodeMap(t, data); !reflect.DeepEqual(got, want) {
		t.Errorf("data = %s\nwant   %v", data, want)
	}
}

func TestDecodeCampaignGroupState(t *testing.T) {
	ok := []struct {
		name string
		body string
	}{
		{"seed sample", sampleCGS},
		{"integers as digit strings", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTOR": "5", "GSW_CAMPAIGN_GROUP_STATE": "4", "GSW_CAMPAIGN_GROUP_ACTION": "2010"})},
		{"actor zero", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTOR": 0})},
		{"date as number", edit(t, sampleCGS, map[string]any{"GSW_DATE_TIME": json.Number("1527519972.123")})},
		{"date whole seconds", edit(t, sampleCGS, map[string]any{"GSW_DATE_TIME": "1527519972"})},
		{"date RFC 3339", edit(t, sampleCGS, map[string]any{"GSW_DATE_TIME": "2018-05-28T15:06:12.123Z"})},
		{"numeric tenant ccid", edit(t, sampleCGS, map[string]any{"GSW_TENANT_CCID": 101})},
		{"empty names are sent as defaults", edit(t, sampleCGS, map[string]any{"GSW_QUEUE_NAME": "", "GSW_TENANT_NAME": ""})},
		{"no campaign, template or dial mode", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_NAME": nil, "GSW_CAMPAIGN_TEMPLATE_NAME": nil, "GSW_DIAL_MODE": nil})},
		{"dial mode unassigned", edit(t, sampleCGS, map[string]any{"GSW_DIAL_MODE": ""})},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			n, err := DecodeCampaignGroupState([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if n.Topic != TopicCampaignGroupState || n.DedupKey != "" || n.AgentID != "" || n.Ext != "" {
				t.Errorf("notification = %+v", n)
			}
			wantSame(t, n.Data, tc.body, nil)
		})
	}
	// Numbers are kept digit for digit.
	n, err := DecodeCampaignGroupState([]byte(sampleCGS))
	if err != nil || !bytes.Contains(n.Data, []byte(`"STAT_BusyFactor":0.8500000000000000001`)) {
		t.Errorf("data = %s, %v", n.Data, err)
	}

	bad := []struct {
		name   string
		body   string
		fields []string
		why    string
	}{
		{"wrong user event", edit(t, sampleCGS, map[string]any{"GSW_USER_EVENT": "ContactProcessed"}), []string{"GSW_USER_EVENT"}, "must be CampaignGroupState"},
		{"actor above 5", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTOR": 6}), []string{"GSW_CAMPAIGN_GROUP_ACTOR"}, "from 0 to 5"},
		{"actor negative", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTOR": "-1"}), []string{"GSW_CAMPAIGN_GROUP_ACTOR"}, "from 0 to 5"},
		{"actor not a number", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTOR": "OCS Client"}), []string{"GSW_CAMPAIGN_GROUP_ACTOR"}, "must be an integer"},
		{"state fractional", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_STATE": 4.5}), []string{"GSW_CAMPAIGN_GROUP_STATE"}, "must be an integer"},
		{"action empty", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_ACTION": ""}), []string{"GSW_CAMPAIGN_GROUP_ACTION"}, "must not be empty"},
		{"date not a time", edit(t, sampleCGS, map[string]any{"GSW_DATE_TIME": "yesterday"}), []string{"GSW_DATE_TIME"}, "timestamp"},
		{"guid empty", edit(t, sampleCGS, map[string]any{"GSW_CAMPAIGN_GROUP_GUID": ""}), []string{"GSW_CAMPAIGN_GROUP_GUID"}, "must not be empty"},
		{"name not a string", edit(t, sampleCGS, map[string]any{"GSW_TENANT_NAME": true}), []string{"GSW_TENANT_NAME"}, "must be a string"},
		{"dial mode wrong type", edit(t, sampleCGS, map[string]any{"GSW_DIAL_MODE": "Predictive"}), []string{"GSW_DIAL_MODE"}, "must be an integer"},
		{"null mandatory", edit(t, sampleCGS, map[string]any{"GSW_QUEUE_NAME": json.RawMessage("null")}), []string{"GSW_QUEUE_NAME"}, "required"},
		{"several problems, sorted", edit(t, sampleCGS, map[string]any{"GSW_USER_EVENT": nil, "GSW_CAMPAIGN_GROUP_ACTOR": 9, "GSW_DATE_TIME": nil}),
			[]string{"GSW_CAMPAIGN_GROUP_ACTOR", "GSW_DATE_TIME", "GSW_USER_EVENT"}, "GSW_CAMPAIGN_GROUP_ACTOR: must be an integer from 0 to 5; GSW_DATE_TIME: required; GSW_USER_EVENT: required"},
	}
	mandatory := []string{"GSW_USER_EVENT", "GSW_DATE_TIME", "GSW_TENANT_NAME", "GSW_TENANT_CCID",
		"GSW_CAMPAIGN_GROUP_NAME", "GSW_CAMPAIGN_GROUP_GUID", "GSW_GROUP_NAME", "GSW_QUEUE_NAME",
		"GSW_CAMPAIGN_GROUP_STATE", "GSW_CAMPAIGN_GROUP_ACTION", "GSW_CAMPAIGN_GROUP_ACTOR"}
	for _, f := range mandatory {
		bad = append(bad, struct {
			name   string
			body   string
			fields []string
			why    string
		}{"missing " + f, edit(t, sampleCGS, map[string]any{f: nil}), []string{f}, f + ": required"})
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCampaignGroupState([]byte(tc.body))
			e := wantError(t, err, CodeInvalid, tc.fields...)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q lacks %q", e.Message, tc.why)
			}
		})
	}
}

// cpMandatory lists the fields seed 001 marks mandatory.
var cpMandatory = []string{"GSW_MESSAGE", "GSW_MESSAGE_GUID", "GSW_TIMESTAMP", "GSW_CALL_ATTEMPT_GUID",
	"GSW_PHONE", "GSW_PHONE_TYPE", "GSW_CHAIN_ID", "GSW_CHAIN_N", "GSW_RECORD_HANDLE", "GSW_REASON",
	"GSW_CALL_RESULT", "GSW_CAMPAIGN_NAME", "GSW_CONTACT_MEDIA_TYPE", "GSW_CALLING_LIST",
	"GSW_CAMPAIGN_GROUP_NAME", "GSW_CAMPAIGN_GROUP_GUID", "GSW_GROUP_NAME", "GSW_QUEUE_NAME",
	"GSW_DIAL_MODE", "GSW_RECORD_TYPE", "GSW_RECORD_STATUS", "GSW_START_PROCESSING"}

// cpMinimal is sampleCP reduced to its mandatory fields.
func cpMinimal(t *testing.T) string {
	m := decodeMap(t, []byte(sampleCP))
	for k := range m {
		if !slices.Contains(cpMandatory, k) {
			delete(m, k)
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestDecodeContactProcessed(t *testing.T) {
	const guid = "0B5A8A3E-77D4-4C5B-A1E3-3F0C7B2E9D11"
	ok := []struct {
		name, body, etag, agent string
	}{
		{"seed sample, quoted lower-case ETag", sampleCP, `"` + strings.ToLower(guid) + `"`, "1001"},
		{"no ETag", sampleCP, "", "1001"},
		{"bare ETag", sampleCP, guid, "1001"},
		{"weak ETag", sampleCP, `W/"` + guid + `"`, "1001"},
		{"mandatory fields only", cpMinimal(t), "", ""},
		{"email media", edit(t, sampleCP, map[string]any{"GSW_CONTACT_MEDIA_TYPE": "email"}), "", "1001"},
		{"sms media", edit(t, sampleCP, map[string]any{"GSW_CONTACT_MEDIA_TYPE": "sms"}), "", "1001"},
		{"numeric agent id", edit(t, sampleCP, map[string]any{"GSW_AGENT_ID": 1001}), "", "1001"},
		{"unassigned timestamps", edit(t, sampleCP, map[string]any{"GSW_DIALING": "", "GSW_ANSWERED": json.RawMessage("null")}), "", "1001"},
		{"timestamps as numbers", edit(t, sampleCP, map[string]any{"GSW_TIMESTAMP": json.Number("1700000300.25"), "GSW_DIALING": 1700000000}), "", "1001"},
		{"user field of any type", edit(t, sampleCP, map[string]any{"Other3": []any{true, nil}, "Other4": map[string]any{}}), "", "1001"},
		{"no lifo, customer or disposition", edit(t, sampleCP, map[string]any{"GSW_CUSTOMER_ID": nil, "GSW_DISPOSITION_CODE": nil}), "", "1001"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			n, err := DecodeContactProcessed([]byte(tc.body), tc.etag)
			if err != nil {
				t.Fatal(err)
			}
			if n.Topic != TopicContactProcessed || n.DedupKey != "cp:"+strings.ToLower(guid) || n.AgentID != tc.agent || n.Ext != "" {
				t.Errorf("notification = %+v", n)
			}
			wantSame(t, n.Data, tc.body, nil)
		})
	}

	bad := []struct {
		name, body, etag string
		fields           []string
		why              string
	}{
		{"wrong ETag", sampleCP, `"11111111-2222-3333-4444-555555555555"`, []string{"ETag"}, "must equal GSW_MESSAGE_GUID"},
		{"wrong media type", edit(t, sampleCP, map[string]any{"GSW_CONTACT_MEDIA_TYPE": "fax"}), "", []string{"GSW_CONTACT_MEDIA_TYPE"}, "must be one of voice, sms, email"},
		{"media type case", edit(t, sampleCP, map[string]any{"GSW_CONTACT_MEDIA_TYPE": "Voice"}), "", []string{"GSW_CONTACT_MEDIA_TYPE"}, "must be one of voice, sms, email"},
		{"wrong message", edit(t, sampleCP, map[string]any{"GSW_MESSAGE": "CampaignGroupState"}), "", []string{"GSW_MESSAGE"}, "must be ContactProcessed"},
		{"integer field with letters", edit(t, sampleCP, map[string]any{"GSW_CHAIN_ID": "17a"}), "", []string{"GSW_CHAIN_ID"}, "must be an integer"},
		{"integer field as object", edit(t, sampleCP, map[string]any{"GSW_RECORD_HANDLE": map[string]any{"v": 1}}), "", []string{"GSW_RECORD_HANDLE"}, "must be an integer"},
		{"bad optional timestamp", edit(t, sampleCP, map[string]any{"GSW_AGENT_RINGING": "soon"}), "", []string{"GSW_AGENT_RINGING"}, "timestamp"},
		{"negative timestamp", edit(t, sampleCP, map[string]any{"GSW_TIMESTAMP": "-5.000"}), "", []string{"GSW_TIMESTAMP"}, "timestamp"},
		{"agent id as array", edit(t, sampleCP, map[string]any{"GSW_AGENT_ID": []any{"1001"}}), "", []string{"GSW_AGENT_ID"}, "must be a string"},
		{"guid too long", edit(t, sampleCP, map[string]any{"GSW_CALL_ATTEMPT_GUID": strings.Repeat("a", 257)}), "", []string{"GSW_CALL_ATTEMPT_GUID"}, "at most 256"},
		{"type problems and a missing field together", edit(t, sampleCP, map[string]any{"GSW_PHONE_TYPE": "mobile", "GSW_PHONE": nil, "GSW_CONTACT_MEDIA_TYPE": "fax"}), "",
			[]string{"GSW_CONTACT_MEDIA_TYPE", "GSW_PHONE", "GSW_PHONE_TYPE"}, "GSW_CONTACT_MEDIA_TYPE: must be one of voice, sms, email; GSW_PHONE: required; GSW_PHONE_TYPE: must be an integer"},
	}
	for _, f := range cpMandatory {
		bad = append(bad, struct {
			name, body, etag string
			fields           []string
			why              string
		}{"missing " + f, edit(t, sampleCP, map[string]any{f: nil}), "", []string{f}, f + ": required"})
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeContactProcessed([]byte(tc.body), tc.etag)
			e := wantError(t, err, CodeInvalid, tc.fields...)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q lacks %q", e.Message, tc.why)
			}
		})
	}
}

func TestDecodeCallback(t *testing.T) {
	const svc = "445-20e740d3-8458-43d6-834d-3713c3385bac"
	t.Run("single", func(t *testing.T) {
		ns, isArray, err := DecodeCallback([]byte(sampleCallback))
		if err != nil || isArray || len(ns) != 1 {
			t.Fatalf("ns = %v, isArray %v, err %v", ns, isArray, err)
		}
		if ns[0].Topic != TopicCallback || ns[0].AgentID != "" || ns[0].DedupKey != "" {
			t.Errorf("notification = %+v", ns[0])
		}
		wantSame(t, ns[0].Data, sampleCallback, nil)
	})
	t.Run("agent id and nested target kept", func(t *testing.T) {
		ns, _, err := DecodeCallback([]byte(sampleTargetFound))
		if err != nil || ns[0].AgentID != "1001" || ns[0].Ext != "" {
			t.Fatalf("ns = %+v, err %v", ns, err)
		}
		wantSame(t, ns[0].Data, sampleTargetFound, nil)
	})
	t.Run("wrapper", func(t *testing.T) {
		ns, isArray, err := DecodeCallback([]byte(sampleWrapper))
		if err != nil || isArray || len(ns) != 1 {
			t.Fatalf("ns = %v, isArray %v, err %v", ns, isArray, err)
		}
		inner := decodeMap(t, []byte(sampleWrapper))["message"].(map[string]any)
		b, _ := json.Marshal(inner)
		wantSame(t, ns[0].Data, string(b), map[string]any{"deviceId": "desk-17"})
	})
	t.Run("wrapper with the message as JSON text", func(t *testing.T) {
		text, _ := json.Marshal(sampleCallback)
		ns, _, err := DecodeCallback([]byte(`{"deviceId": 42, "message": ` + string(text) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		wantSame(t, ns[0].Data, sampleCallback, map[string]any{"deviceId": json.Number("42")})
	})
	t.Run("array of objects and wrappers", func(t *testing.T) {
		body := "[" + sampleCallback + ",\n" + sampleWrapper + " , " + sampleTargetFound + "]"
		ns, isArray, err := DecodeCallback([]byte(body))
		if err != nil || !isArray || len(ns) != 3 {
			t.Fatalf("ns = %v, isArray %v, err %v", ns, isArray, err)
		}
		wantSame(t, ns[0].Data, sampleCallback, nil)
		if !bytes.Contains(ns[1].Data, []byte(`"deviceId":"desk-17"`)) || ns[2].AgentID != "1001" {
			t.Errorf("items = %s / %+v", ns[1].Data, ns[2])
		}
		for _, n := range ns {
			if !json.Valid(n.Data) || n.Data[0] != '{' || bytes.HasPrefix(n.Data, []byte(",")) {
				t.Errorf("item data %s", n.Data)
			}
		}
	})
	t.Run("array with one bad item is refused whole", func(t *testing.T) {
		bad := edit(t, sampleCallback, map[string]any{"event_id": "on_dial_done"})
		ns, isArray, err := DecodeCallback([]byte("[" + sampleCallback + "," + bad + "]"))
		if ns != nil || !isArray {
			t.Errorf("ns = %v, isArray %v", ns, isArray)
		}
		e := wantError(t, err, CodeInvalid, "[1].event_id")
		if !strings.Contains(e.Message, "must start with _cbe_") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("array problems sorted by item", func(t *testing.T) {
		items := make([]string, 12)
		for i := range items {
			items[i] = sampleCallback
		}
		items[2] = `{"event_id": "_cbe_x", "timestamp": "1"}`
		items[10] = `7`
		items[11] = `{"message": {"event_id": "_cbe_x", "_service_id": "s"}}`
		_, _, err := DecodeCallback([]byte("[" + strings.Join(items, ",") + "]"))
		wantError(t, err, CodeInvalid, "[2]._service_id", "[10]", "[11].message.timestamp")
	})
	bad := []struct {
		name, body string
		fields     []string
		why        string
	}{
		{"missing event id", edit(t, sampleCallback, map[string]any{"event_id": nil}), []string{"event_id"}, "required"},
		{"event id not _cbe_", edit(t, sampleCallback, map[string]any{"event_id": "dial_done"}), []string{"event_id"}, "must start with _cbe_"},
		{"missing timestamp", edit(t, sampleCallback, map[string]any{"timestamp": nil}), []string{"timestamp"}, "required"},
		{"bad timestamp", edit(t, sampleCallback, map[string]any{"timestamp": "July"}), []string{"timestamp"}, "timestamp"},
		{"missing service id", edit(t, sampleCallback, map[string]any{"_service_id": nil}), []string{"_service_id"}, "required"},
		{"agent id object", edit(t, sampleCallback, map[string]any{"c_agent_id": map[string]any{}}), []string{"c_agent_id"}, "must be a string"},
		{"wrapper with bad inner", `{"deviceId":"d","message":{"event_id":"_cbe_on_dial_init","_service_id":"s"}}`, []string{"message.timestamp"}, "required"},
		{"wrapper message not an object", `{"deviceId":"d","message":[1]}`, []string{"message"}, "must be an object"},
		{"wrapper message text not JSON", `{"deviceId":"d","message":"hello"}`, []string{"message"}, "must be a JSON object"},
		{"wrapper device id object", `{"deviceId":{},"message":` + sampleCallback + `}`, []string{"deviceId"}, "must be a string"},
		{"empty object", `{}`, []string{"_service_id", "event_id", "timestamp"}, "required"},
		{"array of a scalar", `[1]`, []string{"[0]"}, "must be an object"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeCallback([]byte(tc.body))
			e := wantError(t, err, CodeInvalid, tc.fields...)
			if !strings.Contains(e.Message, tc.why) {
				t.Errorf("message %q lacks %q", e.Message, tc.why)
			}
		})
	}
	t.Run("empty array", func(t *testing.T) {
		_, isArray, err := DecodeCallback([]byte(` [ ] `))
		e := wantError(t, err, CodeInvalid)
		if !isArray || !strings.Contains(e.Message, "empty") {
			t.Errorf("isArray %v, message %q", isArray, e.Message)
		}
	})
	t.Run("array too long", func(t *testing.T) {
		body := "[" + strings.Repeat(sampleCallback+",", MaxBatch) + sampleCallback + "]"
		_, _, err := DecodeCallback([]byte(body))
		e := wantError(t, err, CodeInvalid)
		if !strings.Contains(e.Message, "at most 1000") {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("seed sample verbatim: missing commas", func(t *testing.T) {
		_, _, err := DecodeCallback([]byte(seedCallbackVerbatim))
		e := wantError(t, err, CodeMalformed)
		off := strings.Index(seedCallbackVerbatim, `"_service_id"`)
		for _, want := range []string{"offset " + itoa(off), "line 4, column 11", "missing comma"} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("message %q lacks %q", e.Message, want)
			}
		}
	})
	_ = svc
}

func TestDecodeCDR(t *testing.T) {
	ok := []struct {
		name, body, ext string
	}{
		{"seed fields", sampleCDR, "5001"},
		{"callee hung up in queue: ext null", sampleCDRQueueHangup, ""},
		{"numeric ext and refs", `{"ext": 5001, "internal_call_ref": 98765, "disposition": "ANSWERED"}`, "5001"},
		{"internal ref only", `{"internal_call_ref": "d-1"}`, ""},
		{"extra fields kept", `{"internal_call_ref": "d-1", "recording": {"url": "https://x/y.wav"}, "duration": 61}`, ""},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			n, err := DecodeCDR([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if n.Topic != TopicCDR || n.Ext != tc.ext || n.AgentID != "" || n.DedupKey != "" {
				t.Errorf("notification = %+v", n)
			}
			wantSame(t, n.Data, tc.body, nil)
		})
	}
	bad := []struct {
		name, body string
		fields     []string
	}{
		{"missing internal ref", `{"ext": "5001", "custom_call_ref": "crm-1"}`, []string{"internal_call_ref"}},
		{"empty internal ref", `{"internal_call_ref": ""}`, []string{"internal_call_ref"}},
		{"internal ref object", `{"internal_call_ref": {"id": 1}}`, []string{"internal_call_ref"}},
		{"ext array", `{"internal_call_ref": "d-1", "ext": ["5001"]}`, []string{"ext"}},
		{"disposition bool", `{"internal_call_ref": "d-1", "disposition": false}`, []string{"disposition"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCDR([]byte(tc.body))
			wantError(t, err, CodeInvalid, tc.fields...)
		})
	}
}

// TestMalformed runs each kind of broken body through every decoder.
func TestMalformed(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	deepArr := `{"internal_call_ref":"x","a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}"
	cases := []struct {
		name, body, code, want string
		fields                 []string
	}{
		{"not JSON", `hello`, CodeMalformed, "must be a JSON object", nil},
		{"empty", ``, CodeMalformed, "empty", nil},
		{"white space", " \n\t", CodeMalformed, "empty", nil},
		{"string", `"x"`, CodeMalformed, "must be a JSON object", nil},
		{"null", `null`, CodeMalformed, "must be a JSON object", nil},
		{"truncated", `{"event_id": "_cbe_x", "timestamp`, CodeMalformed, "unexpected end", nil},
		{"trailing garbage", `{"internal_call_ref":"x"} x`, CodeMalformed, "trailing data", nil},
		{"second object", `{"internal_call_ref":"x"}{}`, CodeMalformed, "trailing data", nil},
		{"trailing comma", `{"internal_call_ref":"x",}`, CodeMalformed, "not valid JSON", nil},
		{"single quotes", `{'a': 1}`, CodeMalformed, "not valid JSON", nil},
		{"invalid UTF-8", "{\"internal_call_ref\":\"x\xff\"}", CodeMalformed, "UTF-8 at offset 23", nil},
		{"duplicate key", `{"internal_call_ref":"x","GSW_AGENT_ID":"1","GSW_AGENT_ID":"2"}`, CodeInvalid, "duplicate key", []string{"GSW_AGENT_ID"}},
		{"nested duplicate key", `{"internal_call_ref":"x","c_target":{"dn":"1","dn":"2"}}`, CodeInvalid, "duplicate key", []string{"c_target.dn"}},
		{"duplicate digit key", `{"internal_call_ref":"x","0":"1","0":"2"}`, CodeInvalid, "duplicate key", []string{"0"}},
		{"duplicate empty key", `{"internal_call_ref":"x","":"1","":"2"}`, CodeInvalid, "duplicate key", []string{"body"}},
		{"deep objects", deep, CodeInvalid, "nested deeper than 64", []string{strings.TrimSuffix(strings.Repeat("a.", 64), ".")}},
		{"deep arrays", deepArr, CodeInvalid, "nested deeper than 64", []string{"a" + strings.Repeat("[0]", 63)}},
		{"too large", `{"internal_call_ref":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, CodeMalformed, "larger than", nil},
	}
	decoders := map[string]func([]byte) error{
		"CampaignGroupState": func(b []byte) error { _, err := DecodeCampaignGroupState(b); return err },
		"ContactProcessed":   func(b []byte) error { _, err := DecodeContactProcessed(b, ""); return err },
		"Callback":           func(b []byte) error { _, _, err := DecodeCallback(b); return err },
		"CDR":                func(b []byte) error { _, err := DecodeCDR(b); return err },
	}
	for _, tc := range cases {
		for name, decode := range decoders {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				e := wantError(t, decode([]byte(tc.body)), tc.code, tc.fields...)
				if !strings.Contains(e.Message, tc.want) {
					t.Errorf("message %q lacks %q", e.Message, tc.want)
				}
			})
		}
	}
	// Only the callback endpoint takes arrays.
	for name, decode := range decoders {
		if name == "Callback" {
			continue
		}
		wantError(t, decode([]byte(`[`+sampleCDR+`]`)), CodeMalformed)
	}
}

// TestConcurrentDecode runs the decoders from many goroutines (under -race
// this covers the lazily built validator and the field cache).
func TestConcurrentDecode(t *testing.T) {
	done := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for range 50 {
				if _, e := DecodeContactProcessed([]byte(sampleCP), ""); e != nil {
					err = e
				}
				if _, _, e := DecodeCallback([]byte(sampleWrapper)); e != nil {
					err = e
				}
				if _, e := DecodeCampaignGroupState([]byte(sampleCGS)); e != nil {
					err = e
				}
				if _, e := DecodeCDR([]byte(sampleCDR)); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// The decoders recycle their member lists and values: a notification
// decoded earlier is not changed by the decodes that follow it, whatever
// kind they are.
func TestDecodedNotificationsOutliveRecycling(t *testing.T) {
	first, err := DecodeContactProcessed([]byte(sampleCP), "")
	if err != nil {
		t.Fatal(err)
	}
	wantData := string(first.Data)
	wantFields := maps.Clone(first.Fields)
	wantAgent, wantKey := first.AgentID, first.DedupKey
	for i := range 50 {
		other := edit(t, sampleCP, map[string]any{"GSW_MESSAGE_GUID": fmt.Sprintf("OTHER-%d", i), "GSW_AGENT_ID": "9999", "GSW_PHONE": "+15550000000"})
		if _, err := DecodeContactProcessed([]byte(other), ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecodeCallback([]byte("[" + sampleCallback + "," + sampleWrapper + "]")); err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCDR([]byte(sampleCDR)); err != nil {
			t.Fatal(err)
		}
		// A refused body returns its lists too.
		if _, err := DecodeContactProcessed([]byte(edit(t, sampleCP, map[string]any{"GSW_AGENT_ID": true})), ""); err == nil {
			t.Fatal("a boolean agent id was accepted")
		}
	}
	if string(first.Data) != wantData || !maps.Equal(first.Fields, wantFields) || first.AgentID != wantAgent || first.DedupKey != wantKey {
		t.Fatalf("the first notification changed: agent %q key %q fields %v", first.AgentID, first.DedupKey, first.Fields)
	}
}
