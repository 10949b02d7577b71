package routing

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"iproc/protocol"
	"iproc/reporting/store"
)

var (
	sup   = Viewer{AgentID: "2001", SeesAll: true}
	ann   = Viewer{AgentID: "1001", Extension: "5001"}
	bob   = Viewer{AgentID: "1002", Extension: "5002"}
	noExt = Viewer{AgentID: "1003"}
)

func cp(seq uint64, agent, campaign string) store.Event {
	data, _ := json.Marshal(map[string]any{"GSW_AGENT_ID": agent, "GSW_CAMPAIGN_GROUP_GUID": campaign, "GSW_CALL_RESULT": 33})
	return store.Event{Seq: seq, Name: protocol.TopicContactProcessed, Data: data, Meta: store.Meta{AgentID: agent}}
}

func cdr(seq uint64, ext string) store.Event {
	data, _ := json.Marshal(map[string]any{"ext": ext})
	return store.Event{Seq: seq, Name: protocol.TopicCDR, Data: data, Meta: store.Meta{Ext: ext}}
}

func cgs(seq uint64) store.Event {
	return store.Event{Seq: seq, Name: protocol.TopicCampaignGroupState, Data: json.RawMessage(`{"GSW_CAMPAIGN_GROUP_GUID":"G1"}`)}
}

// receivers routes ev and returns who got it, sorted.
func receivers(ix *Index[string], ev store.Event) []string {
	var got []string
	ix.Route(ev, func(s string) { got = append(got, s) })
	slices.Sort(got)
	return got
}

func TestEntitled(t *testing.T) {
	for _, tc := range []struct {
		v    Viewer
		ev   store.Event
		want bool
	}{
		{sup, cp(1, "1002", "G"), true},
		{sup, cgs(1), true},
		{sup, cdr(1, "5002"), true},
		{ann, cp(1, "1001", "G"), true},
		{ann, cp(1, "1002", "G"), false},
		{ann, cp(1, "", "G"), false},
		{ann, cgs(1), false},
		{ann, cdr(1, "5001"), true},
		{ann, cdr(1, "5002"), false},
		{noExt, cdr(1, ""), false},
		{ann, store.Event{Name: protocol.TopicCallback, Meta: store.Meta{AgentID: "1001"}}, true},
		{ann, store.Event{Name: protocol.TopicCallback, Meta: store.Meta{AgentID: "1002"}}, false},
		{ann, store.Event{Name: "agent.state", Meta: store.Meta{AgentID: "1001"}}, false},
	} {
		if got := Entitled(tc.v, tc.ev); got != tc.want {
			t.Errorf("Entitled(%+v, %s %+v) = %v, want %v", tc.v, tc.ev.Name, tc.ev.Meta, got, tc.want)
		}
	}
}

func TestRouteRightsAndFilters(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	all := protocol.Topics()
	ix.Subscribe("sup", sup, all, nil)
	ix.Subscribe("sup-g1", sup, all, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1"})
	ix.Subscribe("sup-g1-33", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1", "GSW_CALL_RESULT": "33"})
	ix.Subscribe("sup-g1-34", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1", "GSW_CALL_RESULT": "34"})
	ix.Subscribe("ann", ann, all, nil)
	ix.Subscribe("ann-g2", ann, all, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G2"})
	ix.Subscribe("bob", bob, all, nil)
	ix.Subscribe("noext", noExt, all, nil)

	for _, tc := range []struct {
		ev   store.Event
		want []string
	}{
		{cp(1, "1001", "G1"), []string{"ann", "sup", "sup-g1", "sup-g1-33"}},
		{cp(2, "1001", "G2"), []string{"ann", "ann-g2", "sup"}},
		{cp(3, "1002", "G2"), []string{"bob", "sup"}},
		{cp(4, "", "G1"), []string{"sup", "sup-g1", "sup-g1-33"}},
		{cgs(5), []string{"sup", "sup-g1"}},
		{cdr(6, "5001"), []string{"ann", "sup"}},
		{cdr(7, ""), []string{"sup"}},
	} {
		if got := receivers(ix, tc.ev); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: receivers %v, want %v", tc.ev.Name, tc.ev.Data, got, tc.want)
		}
		for _, s := range []string{"sup", "sup-g1", "sup-g1-33", "sup-g1-34", "ann", "ann-g2", "bob", "noext"} {
			if got, want := ix.Receives(s, tc.ev), slices.Contains(tc.want, s); got != want {
				t.Errorf("Receives(%s, %s %s) = %v, want %v (replay and live must agree)", s, tc.ev.Name, tc.ev.Data, got, want)
			}
		}
	}
}

func TestFilterComparesText(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	ix.Subscribe("n", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CALL_RESULT": "33"})
	ix.Subscribe("s", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CALL_RESULT": "34"})
	ev := store.Event{Seq: 1, Name: protocol.TopicContactProcessed, Data: json.RawMessage(`{"GSW_CALL_RESULT":"33"}`)}
	if got := receivers(ix, ev); !slices.Equal(got, []string{"n"}) {
		t.Fatalf("string 33 against filter 33: %v", got)
	}
	ev.Data = json.RawMessage(`{"GSW_CALL_RESULT":34}`)
	if got := receivers(ix, ev); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("number 34 against filter 34: %v", got)
	}
	ev.Data = json.RawMessage(`{"GSW_CALL_RESULT":{"v":33}}`)
	if got := receivers(ix, ev); len(got) != 0 {
		t.Fatalf("an object matched a scalar filter: %v", got)
	}
}

func TestResubscribeReplacesFilterAndUnsubscribe(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	topic := []string{protocol.TopicContactProcessed}
	ix.Subscribe("s", sup, topic, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1"})
	ix.Subscribe("s", sup, topic, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G2"})
	if got := receivers(ix, cp(1, "", "G1")); len(got) != 0 {
		t.Fatalf("old filter still in force: %v", got)
	}
	if got := receivers(ix, cp(2, "", "G2")); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("new filter: %v", got)
	}
	ix.Subscribe("s", sup, topic, nil)
	if got := receivers(ix, cp(3, "", "G1")); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("filter removed: %v", got)
	}
	if n, subs := ix.Len(); n != 1 || subs != 1 {
		t.Fatalf("Len = %d, %d; want 1 subscription of 1 subscriber", n, subs)
	}
	ix.Unsubscribe("s", topic)
	if got := receivers(ix, cp(4, "", "G1")); len(got) != 0 {
		t.Fatalf("after unsubscribe: %v", got)
	}
	if n, subs := ix.Len(); n != 0 || subs != 0 || len(ix.fields) != 0 || len(ix.lists) != 0 {
		t.Fatalf("after unsubscribe: Len %d, %d; fields %v; lists %d", n, subs, ix.fields, len(ix.lists))
	}
}

// Subscriptions an agent can never use (campaign group states) are kept,
// so they are stored and reported, but index nothing.
func TestAgentSubscriptionToCampaignStatesIsKeptButRoutesNothing(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	ix.Subscribe("ann", ann, []string{protocol.TopicCampaignGroupState}, nil)
	if subs := ix.Subscriptions("ann"); len(subs) != 1 {
		t.Fatalf("Subscriptions = %v", subs)
	}
	if n, _ := ix.Len(); n != 0 {
		t.Fatalf("%d indexed subscriptions", n)
	}
	if got := receivers(ix, cgs(1)); len(got) != 0 {
		t.Fatalf("agent got a campaign group state: %v", got)
	}
}

// Replace is how sessions restored from the log and mirrored from another
// instance enter the index: with the rights of their viewer, whatever they
// subscribed to; repeated replaces and a remove leave nothing behind.
func TestReplaceKeepsRightsAndLeavesNoStaleEntries(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	for i := range 100 {
		s := fmt.Sprintf("remote-%d", i)
		ix.Replace(s, ann, map[string]Filter{protocol.TopicContactProcessed: nil, protocol.TopicCampaignGroupState: nil})
		if got := receivers(ix, cp(uint64(i), "1002", "G1")); len(got) != 0 {
			t.Fatalf("a mirrored agent session got another agent's event: %v", got)
		}
		if got := receivers(ix, cgs(uint64(i))); len(got) != 0 {
			t.Fatalf("a mirrored agent session got a campaign group state: %v", got)
		}
		ix.Replace(s, ann, map[string]Filter{protocol.TopicContactProcessed: {"GSW_CAMPAIGN_GROUP_GUID": "G1"}})
		ix.Remove(s)
	}
	if n, subs := ix.Len(); n != 0 || subs != 0 || len(ix.lists) != 0 {
		t.Fatalf("after 100 open/close cycles: %d subscriptions, %d subscribers, %d lists", n, subs, len(ix.lists))
	}
}

// RouteRun gives an unfiltered subscriber the whole run in order and every
// subscriber its events in seq order.
func TestRouteRunOrder(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	ix.Subscribe("sup", sup, []string{protocol.TopicContactProcessed}, nil)
	ix.Subscribe("ann", ann, []string{protocol.TopicContactProcessed}, nil)
	ix.Subscribe("g1", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1"})
	run := []store.Event{cp(1, "1001", "G1"), cp(2, "1002", "G2"), cp(3, "1001", "G2"), cp(4, "1002", "G1")}
	var got []string
	ix.RouteRun(run, func(s string, i int) { got = append(got, fmt.Sprintf("%s:%d", s, run[i].Seq)) })
	want := []string{"sup:1", "sup:2", "sup:3", "sup:4", "ann:1", "g1:1", "ann:3", "g1:4"}
	if !slices.Equal(got, want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
}

// Fields decoded at ingest are used when the event carries them: the data
// is not scanned again.
func TestRouteUsesDecodedFields(t *testing.T) {
	ix := New[string](NewCustomerFields(DefaultCustomerFields...))
	ix.Subscribe("g1", sup, []string{protocol.TopicContactProcessed}, Filter{"GSW_CAMPAIGN_GROUP_GUID": "G1"})
	ev := store.Event{Seq: 1, Name: protocol.TopicContactProcessed, Data: json.RawMessage(`{}`),
		Fields: map[string]string{"GSW_CAMPAIGN_GROUP_GUID": "G1"}}
	if got := receivers(ix, ev); !slices.Equal(got, []string{"g1"}) || !ix.Receives("g1", ev) {
		t.Fatalf("receivers %v: the decoded fields were not used", got)
	}
}
