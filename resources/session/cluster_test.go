package session

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
)

// appendRemote appends a session event as instance "B" of the domain
// would.
func appendRemote(t *testing.T, r *Registry, name string, rec any) {
	t.Helper()
	data, _ := json.Marshal(rec)
	if _, err := r.log.Append(context.Background(), []store.Record{{Name: name, Data: data, Meta: store.Meta{Origin: "B"}}}); err != nil {
		t.Fatal(err)
	}
}

// A session opened on instance B and resumed on A keeps its agent's
// rights on A: the mirrored subscriptions go through the routing index like
// local ones (they used to be filed with the supervisors').
func TestMirroredSessionKeepsAgentRights(t *testing.T) {
	r := newTestRegistry(t, Config{Instance: "A"})
	token := "resume-me"
	appendRemote(t, r, EventSessionOpened, sessionRecord{ID: "s-b", AgentID: "1001", TokenHash: hashToken(token), Owner: "B",
		Subs: map[string]map[string]string{protocol.TopicContactProcessed: {}, protocol.TopicCampaignGroupState: {}}})
	s, ok := r.Get("s-b")
	if !ok {
		t.Fatal("session of B not mirrored")
	}
	if _, _, err := r.Resume(context.Background(), ResumeRequest{ID: "s-b", ResumeToken: token}); err != nil {
		t.Fatal(err)
	}
	c := &fakeConn{}
	_, head := r.log.Bounds()
	r.Attach(context.Background(), s, c, head, []byte(`{}`))
	c.take()
	other := post(t, r, "1002")
	if _, err := r.log.Append(context.Background(), []store.Record{{Name: protocol.TopicCampaignGroupState, Data: json.RawMessage(`{"GSW_CAMPAIGN_GROUP_GUID":"G1"}`)}}); err != nil {
		t.Fatal(err)
	}
	own := post(t, r, "1001")
	if got := joined(c.take()); got != "outbound.contactProcessed#"+itoa(own) {
		t.Fatalf("agent 1001 resumed on A got %q; want only its own event (not %d, nor the campaign state)", got, other)
	}
}

// Sessions opened and closed on another instance leave nothing behind in
// the registry, the routing index or the team-status report.
func TestMirroredOpenCloseCyclesLeaveNothing(t *testing.T) {
	r := newTestRegistry(t, Config{Instance: "A"})
	for i := range 100 {
		id := fmt.Sprintf("s-%d", i)
		appendRemote(t, r, EventSessionOpened, sessionRecord{ID: id, AgentID: "2001", Owner: "B", Watching: true,
			Subs: map[string]map[string]string{protocol.TopicContactProcessed: {"GSW_CAMPAIGN_GROUP_GUID": "G1"}, protocol.TopicCDR: {}}})
		appendRemote(t, r, EventSessionSubs, sessionRecord{ID: id, AgentID: "2001", Owner: "B",
			Subs: map[string]map[string]string{protocol.TopicCallback: {}}})
		appendRemote(t, r, EventSessionClosed, map[string]string{"id": id, "reason": protocol.EndClosed})
	}
	if n, subs := r.routes.Len(); n != 0 || subs != 0 || r.Count() != 0 || r.team.Watchers() != 0 {
		t.Fatalf("after 100 remote open/close cycles: %d subscriptions of %d sessions in the index, %d sessions, %d watchers", n, subs, r.Count(), r.team.Watchers())
	}
}

// A session closed on another instance ends here too: the connection this
// instance still had gets session.ended (the override case).
func TestRemoteCloseEndsLocalConnection(t *testing.T) {
	r := newTestRegistry(t, Config{Instance: "A"})
	c := &fakeConn{}
	s, _ := login(t, r, "1001", c)
	c.take()
	appendRemote(t, r, EventSessionClosed, map[string]string{"id": s.ID, "reason": protocol.EndOverride})
	if got := joined(c.take()); got != protocol.EventSessionEnded || !s.Ended() {
		t.Fatalf("after the remote override: %s (ended %v)", got, s.Ended())
	}
	if _, ok := r.Get(s.ID); ok {
		t.Fatal("still registered")
	}
}

// A session resumed here while the instance it left still stores its
// detach: the detach, arriving after the resume, is no claim, and the
// connection here keeps the session (it used to be dropped, a race seen
// in TestClusterResumedAgentKeepsAgentRights).
func TestLateRemoteDetachKeepsLocalResume(t *testing.T) {
	r := newTestRegistry(t, Config{Instance: "A"})
	token := "resume-me"
	appendRemote(t, r, EventSessionOpened, sessionRecord{ID: "s-b", AgentID: "1001", TokenHash: hashToken(token), Owner: "B",
		Subs: map[string]map[string]string{protocol.TopicContactProcessed: {}}})
	s, _ := r.Get("s-b")
	c := &fakeConn{}
	_, head := r.log.Bounds()
	r.Attach(context.Background(), s, c, head, []byte(`{}`))
	appendRemote(t, r, EventSessionSubs, sessionRecord{ID: "s-b", AgentID: "1001", TokenHash: hashToken(token), Owner: "B",
		Subs: map[string]map[string]string{protocol.TopicContactProcessed: {}}, DetachedAt: time.Now()})
	if !s.Attached(c) {
		t.Fatal("B's late detach took the session away from its connection here")
	}
	c.take()
	own := post(t, r, "1001")
	if got := joined(c.take()); got != "outbound.contactProcessed#"+itoa(own) {
		t.Fatalf("after B's late detach: %q", got)
	}
}
