package session

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"iproc/protocol"
	"iproc/reporting/store"
	"iproc/reporting/teamstatus"
)

func code(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// The answer to prepareSession goes out before the events committed since
// the session was made: its own login state first of all.
func TestAttachQueuesReplyThenHeldEvents(t *testing.T) {
	r := newTestRegistry(t, Config{})
	var req PrepareRequest
	req.Agent.ID, req.Agent.Password = "2001", testPassword
	p, err := r.Prepare(context.Background(), req, "192.0.2.1:1")
	if err != nil || p.Session == nil {
		t.Fatalf("prepare: %v %+v", err, p)
	}
	// Committed after the session was made, before it is attached.
	ann := &fakeConn{}
	annS, _ := login(t, r, "1001", ann)
	c := &fakeConn{}
	r.Attach(context.Background(), p.Session, c, p.From, []byte(`{"result":"success"}`))
	got := joined(c.take())
	if got != "reply session.stateChanged#2" {
		t.Fatalf("frames after attach: %s", got)
	}
	// Live from now on, once each.
	if err := r.SetState(context.Background(), annS, SetStateRequest{State: protocol.StateReady}); err != nil {
		t.Fatal(err)
	}
	if got := joined(ann.take()); got != "reply session.stateChanged#4 session.stateChanged#5" {
		t.Fatalf("agent's frames: %s", got)
	}
	if got := joined(c.take()); got != "" {
		t.Fatalf("supervisor not watching got %s", got)
	}
}

func TestConfirmAndOverride(t *testing.T) {
	r := newTestRegistry(t, Config{})
	first := &fakeConn{}
	old, _ := login(t, r, "1001", first)
	var req PrepareRequest
	req.Agent.ID, req.Agent.Password = "1001", testPassword
	p, err := r.Prepare(context.Background(), req, "192.0.2.1:1")
	if err != nil || p.Session != nil || p.Confirm == "" {
		t.Fatalf("second login without override: %v %+v", err, p)
	}
	req.Override = true
	p, err = r.Prepare(context.Background(), req, "192.0.2.1:1")
	if err != nil || p.Session == nil || p.Session.ID == old.ID {
		t.Fatalf("override: %v %+v", err, p)
	}
	if !old.Ended() || old.Attached(first) {
		t.Fatal("the overridden session is still live")
	}
	frames := first.frames
	if last := frames[len(frames)-1]; last["name"] != protocol.EventSessionEnded || last["data"].(map[string]any)["reason"] != protocol.EndOverride {
		t.Fatalf("old connection's last frame %v, want session.ended override", last)
	}
	if got, ok := r.Get(old.ID); ok {
		t.Fatalf("overridden session still registered: %v", got.ID)
	}
	if r.Count() != 1 {
		t.Fatalf("Count = %d", r.Count())
	}
}

func TestPrepareChecksInput(t *testing.T) {
	r := newTestRegistry(t, Config{})
	var req PrepareRequest
	if _, err := r.Prepare(context.Background(), req, "192.0.2.1:1"); code(err) != protocol.CodeInvalid {
		t.Fatalf("empty request: %v", err)
	}
	req.Model, req.Agent.ID, req.Agent.Password = "cucm", "1001", testPassword
	if _, err := r.Prepare(context.Background(), req, "192.0.2.1:1"); code(err) != protocol.CodeUnknownModel {
		t.Fatalf("unknown model: %v", err)
	}
	req.Model, req.Agent.Password = "", "wrong"
	if _, err := r.Prepare(context.Background(), req, "192.0.2.1:1"); code(err) != protocol.CodeInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
}

// A session detached from its connection is resumable within the grace
// period with its token, and replays what it missed; past the grace, Run
// ends it and its agent is logged out.
func TestResumeWithinGraceThenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestRegistry(t, Config{Grace: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)

		c := &fakeConn{}
		s, token := login(t, r, "1001", c)
		subscribe(t, r, s, "", protocol.TopicContactProcessed)
		c.take()
		r.Detach(s, c)
		missed := post(t, r, "1001")
		if got := c.take(); len(got) != 0 {
			t.Fatalf("a detached connection got %v", got)
		}
		time.Sleep(30 * time.Second)
		for _, bad := range []ResumeRequest{{ID: s.ID, ResumeToken: "nope"}, {ID: "nope", ResumeToken: token}, {ID: s.ID}} {
			if _, _, err := r.Resume(ctx, bad); code(err) != protocol.CodeNotResumable {
				t.Fatalf("resume %+v: %v", bad, err)
			}
		}
		got, res, err := r.Resume(ctx, ResumeRequest{ID: s.ID, ResumeToken: token, Since: missed - 1})
		if err != nil || got != s || !res.Recovered || res.Seq != missed {
			t.Fatalf("resume: %v %+v", err, res)
		}
		c2 := &fakeConn{}
		r.Attach(ctx, s, c2, missed-1, []byte(`{}`))
		if got := joined(c2.take()); got != "reply outbound.contactProcessed#"+itoa(missed) {
			t.Fatalf("after resume: %s", got)
		}

		r.Detach(s, c2)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if s.Ended() {
			t.Fatal("ended before the grace period passed")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !s.Ended() {
			t.Fatal("not ended after the grace period")
		}
		if _, _, err := r.Resume(ctx, ResumeRequest{ID: s.ID, ResumeToken: token}); code(err) != protocol.CodeNotResumable {
			t.Fatalf("resume after expiry: %v", err)
		}
		var st teamstatus.State
		if err := r.log.View(func(kv store.KV) error { st, _ = teamstatus.Lookup(kv, "1001"); return nil }); err != nil {
			t.Fatal(err)
		}
		if st.State != protocol.StateLoggedOut || st.Reason != protocol.EndExpired {
			t.Fatalf("agent state after expiry: %+v", st)
		}
		if n, subs := r.routes.Len(); n != 0 || subs != 0 {
			t.Fatalf("expired session left %d subscriptions", n)
		}
	})
}

// A connection whose queue overflows loses its session's connection; the
// session stays resumable and nothing it missed is lost.
func TestOverflowDetachesAndResumeLosesNothing(t *testing.T) {
	r := newTestRegistry(t, Config{})
	c := &fakeConn{}
	s, token := login(t, r, "2001", c)
	subscribe(t, r, s, "", protocol.TopicContactProcessed)
	c.take()
	first := post(t, r, "1001")
	c.full = true
	post(t, r, "1002")
	last := post(t, r, "1001")
	if s.Attached(c) {
		t.Fatal("still attached after an overflow")
	}
	got, _, err := r.Resume(context.Background(), ResumeRequest{ID: s.ID, ResumeToken: token, Since: first})
	if err != nil || got != s {
		t.Fatal(err)
	}
	c2 := &fakeConn{}
	r.Attach(context.Background(), s, c2, first, []byte(`{}`))
	if got := joined(c2.take()); got != "reply outbound.contactProcessed#"+itoa(first+1)+" outbound.contactProcessed#"+itoa(last) {
		t.Fatalf("after resume: %s", got)
	}
}

// Sessions survive a restart: subscriptions, watches and the resume token.
func TestSessionsRestoredFromTheLog(t *testing.T) {
	var dispatch func([]store.Event)
	log := openLog(t, &dispatch)
	r := newTestRegistry(t, Config{Log: log})
	dispatch = r.DispatchBatch
	c := &fakeConn{}
	s, token := login(t, r, "2001", c)
	subscribe(t, r, s, `{"GSW_CAMPAIGN_GROUP_GUID":"G1"}`, protocol.TopicContactProcessed)
	if err := r.BeginTeamStatus(context.Background(), s, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	r2 := newTestRegistry(t, Config{Log: log})
	dispatch = r2.DispatchBatch
	s2, ok := r2.Get(s.ID)
	if !ok || !r2.team.Watching(s2) {
		t.Fatalf("restored: %v, watching %v", ok, ok && r2.team.Watching(s2))
	}
	if subs := r2.routes.Subscriptions(s2); len(subs) != 1 || subs[protocol.TopicContactProcessed]["GSW_CAMPAIGN_GROUP_GUID"] != "G1" {
		t.Fatalf("restored subscriptions %v", subs)
	}
	_, head := log.Bounds()
	if _, _, err := r2.Resume(context.Background(), ResumeRequest{ID: s.ID, ResumeToken: token, Since: head}); err != nil {
		t.Fatal(err)
	}
	c2 := &fakeConn{}
	r2.Attach(context.Background(), s2, c2, head, []byte(`{}`))
	seq := post(t, r2, "1001")
	ann := &fakeConn{}
	login(t, r2, "1001", ann)
	if got := joined(c2.take()); got != "reply outbound.contactProcessed#"+itoa(seq)+" report.teamstatus.memberstatuschanged#"+itoa(seq+2) {
		t.Fatalf("after restart: %s", got)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// A session restored after a restart keeps the grace it had left: the time
// it was detached is in the log. One still attached when the server stopped
// is detached from the restart on.
func TestRestoredSessionKeepsRemainingGrace(t *testing.T) {
	start := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	var dispatch func([]store.Event)
	log := openLog(t, &dispatch)
	r := newTestRegistry(t, Config{Log: log, Grace: time.Minute, Now: clock})
	dispatch = r.DispatchBatch
	c := &fakeConn{}
	gone, goneToken := login(t, r, "1001", c)
	r.Detach(gone, c)
	live, liveToken := login(t, r, "1002", &fakeConn{})

	now = start.Add(50 * time.Second) // the restart
	r2 := newTestRegistry(t, Config{Log: log, Grace: time.Minute, Now: clock})
	dispatch = r2.DispatchBatch
	ctx := context.Background()
	now = start.Add(61 * time.Second)
	r2.expire(ctx)
	if _, _, err := r2.Resume(ctx, ResumeRequest{ID: gone.ID, ResumeToken: goneToken}); code(err) != protocol.CodeNotResumable {
		t.Fatalf("a session detached 61 s ago with a 60 s grace: resume answered %v", err)
	}
	now = start.Add(109 * time.Second)
	r2.expire(ctx)
	s, _, err := r2.Resume(ctx, ResumeRequest{ID: live.ID, ResumeToken: liveToken})
	if err != nil {
		t.Fatalf("a session attached at the stop, resumed 59 s after the restart: %v", err)
	}
	// Attached again: the log says so, and a second restart gives it a
	// fresh grace from then rather than the old detach time.
	r2.Attach(ctx, s, &fakeConn{}, 0, []byte(`{}`))
	now = start.Add(10 * time.Minute)
	r3 := newTestRegistry(t, Config{Log: log, Grace: time.Minute, Now: clock})
	dispatch = r3.DispatchBatch
	now = now.Add(30 * time.Second)
	r3.expire(ctx)
	if _, _, err := r3.Resume(ctx, ResumeRequest{ID: live.ID, ResumeToken: liveToken}); err != nil {
		t.Fatalf("after the second restart: %v", err)
	}
}
