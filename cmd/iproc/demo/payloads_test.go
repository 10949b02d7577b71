package demo

import (
	"encoding/json"
	"testing"
	"time"

	"iproc/reporting/notify"
)

// TestPayloadsAreValid decodes every kind and step of notification the
// simulator posts with the server's own validators.
func TestPayloadsAreValid(t *testing.T) {
	now := time.Now()
	enc := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, g := range demoGroups() {
		if _, err := notify.DecodeCampaignGroupState(enc(campaignGroupState(g, groupState(i), now))); err != nil {
			t.Errorf("campaign group state %s: %v", g.name, err)
		}
		for n := 0; n < 3; n++ {
			cp := contactProcessed(g, "run", n, "1001", now)
			if _, err := notify.DecodeContactProcessed(enc(cp), cp["GSW_MESSAGE_GUID"].(string)); err != nil {
				t.Errorf("contact processed %d: %v", n, err)
			}
		}
	}
	for step := range callbackSteps() {
		if _, _, err := notify.DecodeCallback(enc(callbackEvent("run", 7, step, "1001", "5001", now))); err != nil {
			t.Errorf("callback step %d: %v", step, err)
		}
	}
	a, b := contactProcessed(demoGroups()[0], "r1", 1, "1001", now), contactProcessed(demoGroups()[0], "r2", 1, "1001", now)
	if a["GSW_MESSAGE_GUID"] == b["GSW_MESSAGE_GUID"] {
		t.Error("two runs reuse a message GUID: the second run's calls would be duplicates")
	}
}
