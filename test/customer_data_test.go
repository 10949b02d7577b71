package test

import (
	"encoding/json"
	"strings"
	"testing"

	"iproc/reporting/directory"
	"iproc/server"
)

// withFullCustomerData is the test directory with team lead 3001 allowed
// customer data whole.
func withFullCustomerData(t *testing.T) *directory.Directory {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(testDirectoryJSON(t), &doc); err != nil {
		t.Fatal(err)
	}
	for _, a := range doc["agents"].([]any) {
		if a := a.(map[string]any); a["id"] == "3001" {
			a["customerData"] = "full"
		}
	}
	b, _ := json.Marshal(doc)
	d, err := directory.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Customer phone numbers on a need-to-know basis: a supervisor gets them
// masked, the call's agent whole, a lead allowed customer data whole; a
// replay after resume is masked like live delivery; a filter on the whole
// number matches nothing for a viewer who may not see it.
func TestCustomerDataMaskedByDefault(t *testing.T) {
	ts := startServer(t, func(c *server.Config) { c.Directory = withFullCustomerData(t) })
	sup, supSID, supToken := subscribed(t, ts, "2001")
	lead, leadSID, _ := subscribed(t, ts, "3001")
	ann, _, _ := subscribed(t, ts, "1001")
	cp := contactProcessed("MASK-1", "ATT-MASK-1", "1001")
	status, body := post(t, ts.URL+pathCP, jsonOf(cp), nil)
	if status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	phone := cp["GSW_PHONE"].(string)
	for _, c := range []struct {
		who   string
		c     *client
		whole bool
	}{{"supervisor 2001", sup, false}, {"lead 3001 (customerData full)", lead, true}, {"agent 1001 (its call)", ann, true}} {
		got := c.c.waitEvent("outbound.contactProcessed")["data"].(map[string]any)["GSW_PHONE"]
		want := phone
		if !c.whole {
			want = masked(phone)
		}
		if got != want {
			t.Errorf("%s got GSW_PHONE %v, want %v", c.who, got, want)
		}
	}
	// The call journey: the Customer step's device is the number.
	for _, c := range []struct {
		who   string
		c     *client
		whole bool
	}{{"supervisor 2001", sup, false}, {"lead 3001 (customerData full)", lead, true}, {"agent 1001 (its call)", ann, true}} {
		j := success(t, c.c.request("report.calljourney", map[string]any{"CallId": "ATT-MASK-1"}, ""))
		raw := jsonOf(j)
		want := phone
		if !c.whole {
			want = masked(phone)
			if strings.Contains(raw, phone) {
				t.Errorf("%s's journey holds the whole number: %s", c.who, raw)
			}
		}
		if !strings.Contains(raw, `"Device":"`+want+`"`) {
			t.Errorf("%s's journey: no Customer step with device %s: %s", c.who, want, raw)
		}
	}
	// The supervisor misses one and resumes: the replay is masked too.
	last := seqOf(t, body)
	sup.ws.Close()
	cp2 := contactProcessed("MASK-2", "ATT-MASK-2", "1002")
	if status, body := post(t, ts.URL+pathCP, jsonOf(cp2), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	again, resp := resumeOn(t, ts.WS, supSID, supToken, last)
	success(t, resp)
	ev := again.waitEvent("outbound.contactProcessed")
	if raw := jsonOf(ev); strings.Contains(raw, phone) || ev["data"].(map[string]any)["GSW_PHONE"] != masked(phone) {
		t.Errorf("replayed event: %s", raw)
	}
	// A filter on the whole number: the lead, who may see it, gets the
	// call; the supervisor, who may not, gets nothing (no guessing numbers
	// by filtering). A campaign state posted after it is the barrier.
	byPhone := map[string]any{"topics": []string{"outbound.contactProcessed"}, "filter": map[string]any{"GSW_PHONE": phone}}
	success(t, again.request("subscribe", byPhone, supSID))
	success(t, lead.request("subscribe", byPhone, leadSID))
	if status, body := post(t, ts.URL+pathCP, jsonOf(contactProcessed("MASK-3", "ATT-MASK-3", "1001")), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	if status, body := post(t, ts.URL+pathCGS, jsonOf(campaignGroupState("6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F", 2)), nil); status != 200 {
		t.Fatalf("post: %d %v", status, body)
	}
	lead.next("MASK-3 through the lead's filter on the number", func(m map[string]any) bool {
		d, _ := m["data"].(map[string]any)
		return m["name"] == "outbound.contactProcessed" && d["GSW_MESSAGE_GUID"] == "MASK-3"
	})
	again.waitEvent("outbound.campaignGroupState")
	again.noEvent("outbound.contactProcessed", 0)
}
