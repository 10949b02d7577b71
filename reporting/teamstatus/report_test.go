package teamstatus

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"iproc/reporting/directory"
)

func dir(t *testing.T, doc string) *directory.Directory {
	t.Helper()
	d, err := directory.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const hash = "$2a$04$7ANgVD3hlcb5mVQu5NrpiuXZtdcHkGLaMr2pnBRI6a5e/Oa3ZtSLa"

func agents(list ...string) string {
	var out []string
	for _, a := range list {
		f := strings.Split(a, "/") // id/name/type
		out = append(out, fmt.Sprintf(`{"id":%q,"name":%q,"type":%q,"passwordHash":%q}`, f[0], f[1], f[2], hash))
	}
	return strings.Join(out, ",")
}

var before = `{"agents":[` + agents("1001/Ann/Agent", "1002/Bob/Agent", "1003/Cy/Agent", "2001/Sue/Supervisor") + `],
	"teams":[{"id":"t1","name":"Sales","members":["1001","1002"],"supervisors":["2001"]},
	         {"id":"t2","name":"Support","members":["1003"],"supervisors":["2001"]}]}`

// line describes a frame as "name watcher team member/status/since…".
func line(t *testing.T, frame []byte) string {
	t.Helper()
	var ev struct {
		Name string `json:"name"`
		Seq  uint64 `json:"seq"`
		Data struct {
			AgentID string `json:"agentId"`
			Team    struct {
				TeamID   string           `json:"teamId"`
				TeamName string           `json:"teamName"`
				Members  []map[string]any `json:"members"`
			} `json:"team"`
		} `json:"data"`
	}
	if err := json.Unmarshal(frame, &ev); err != nil {
		t.Fatal(err)
	}
	parts := []string{strings.TrimPrefix(ev.Name, "report.teamstatus."), ev.Data.AgentID, ev.Data.Team.TeamID, ev.Data.Team.TeamName}
	if ev.Seq != 0 {
		parts[0] += fmt.Sprintf("#%d", ev.Seq)
	}
	for _, m := range ev.Data.Team.Members {
		s := fmt.Sprint(m["memberId"])
		if name, ok := m["memberName"]; ok {
			s += fmt.Sprintf("/%v/%v/%v", name, m["status"], m["since"])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

type recorder struct {
	t     *testing.T
	lines map[string][]string
}

func (r *recorder) deliver(w string, frames [][]byte) {
	for _, f := range frames {
		r.lines[w] = append(r.lines[w], line(r.t, f))
	}
}

func TestBeginApplyAndSince(t *testing.T) {
	rep := New[string](dir(t, before))
	since := time.Date(2026, 12, 2, 9, 30, 0, 250e6, time.UTC)
	rep.Restore([]State{{AgentID: "1002", State: "ready", Since: since}})
	rec := &recorder{t: t, lines: map[string][]string{}}
	rep.Begin("w-sue", "2001", func(frames [][]byte) { rec.deliver("w-sue", frames) })
	want := []string{
		"teamadded 2001 t1 Sales 1001/Ann/logged_out/<nil> 1002/Bob/ready/2026-12-02T09:30:00.250Z 2001/Sue/logged_out/<nil>",
		"teamadded 2001 t2 Support 1003/Cy/logged_out/<nil> 2001/Sue/logged_out/<nil>",
	}
	if !slices.Equal(rec.lines["w-sue"], want) {
		t.Fatalf("snapshot:\n%s\nwant\n%s", strings.Join(rec.lines["w-sue"], "\n"), strings.Join(want, "\n"))
	}
	rec.lines = map[string][]string{}
	rep.Apply(7, State{AgentID: "1001", State: "ACW", Reason: "x", Since: since}, "own-1001", true, [][]byte{[]byte(`{"name":"session.stateChanged","seq":7}`)}, rec.deliver)
	if got := rec.lines["w-sue"]; !slices.Equal(got, []string{"memberstatuschanged#7 2001 t1 Sales 1001/Ann/ACW/2026-12-02T09:30:00.250Z"}) {
		t.Fatalf("watcher got %v", got)
	}
	if got := rec.lines["own-1001"]; len(got) != 1 {
		t.Fatalf("the agent's own session got %v", got)
	}
	// The supervisor watching its own team gets both frames of its seq in
	// one delivery.
	calls := 0
	rep.Apply(8, State{AgentID: "2001", State: "ready"}, "w-sue", true, [][]byte{[]byte(`{"name":"session.stateChanged","seq":8}`)}, func(w string, frames [][]byte) {
		calls++
		if w != "w-sue" || len(frames) != 3 {
			t.Fatalf("delivery to %s of %d frames, want w-sue with stateChanged and two memberstatuschanged", w, len(frames))
		}
	})
	if calls != 1 {
		t.Fatalf("%d deliveries", calls)
	}
	if got := rep.StatusFrames("w-sue", 8, State{AgentID: "1003", State: "ready"}); len(got) != 1 || line(t, got[0]) != "memberstatuschanged#8 2001 t2 Support 1003/Cy/ready/<nil>" {
		t.Fatalf("replay frames %q", got)
	}
	rep.End("w-sue")
	if rep.Watching("w-sue") || rep.StatusFrames("w-sue", 9, State{AgentID: "1003"}) != nil {
		t.Fatal("still watching after End")
	}
}

// A reload tells each watcher what changed for it, from directory.Diff: a
// renamed member or one whose type changed is removed and added again with
// the new values; teams a watcher gains or loses are added or removed whole.
func TestSetDirectoryRenamesAndMoves(t *testing.T) {
	rep := New[string](dir(t, before))
	rec := &recorder{t: t, lines: map[string][]string{}}
	rep.Watch("w-sue", "2001")
	rep.Watch("w-ann", "1001")
	rep.Watch("w-cy", "1003")
	after := `{"agents":[` + agents("1001/Ann/Agent", "1002/Robert/Agent", "1003/Cy/TeamLead", "2001/Sue/Supervisor") + `],
		"teams":[{"id":"t1","name":"Sales East","members":["1001","1002","1003"],"supervisors":["2001"]}]}`
	rep.SetDirectory(12, dir(t, after), rec.deliver)
	want := map[string][]string{
		"w-sue": {
			"teamchanged#12 2001 t1 Sales East",
			"memberremoved#12 2001 t1 Sales East 1002",
			"memberadded#12 2001 t1 Sales East 1002/Robert/logged_out/<nil> 1003/Cy/logged_out/<nil>",
			"teamremoved#12 2001 t2 Support",
		},
		"w-ann": {
			"teamchanged#12 1001 t1 Sales East",
			"memberremoved#12 1001 t1 Sales East 1002",
			"memberadded#12 1001 t1 Sales East 1002/Robert/logged_out/<nil> 1003/Cy/logged_out/<nil>",
		},
		"w-cy": {
			"teamadded#12 1003 t1 Sales East 1001/Ann/logged_out/<nil> 1002/Robert/logged_out/<nil> 1003/Cy/logged_out/<nil> 2001/Sue/logged_out/<nil>",
			"teamremoved#12 1003 t2 Support",
		},
	}
	for w, lines := range want {
		if got := rec.lines[w]; !slices.Equal(got, lines) {
			t.Errorf("%s got\n%s\nwant\n%s", w, strings.Join(got, "\n"), strings.Join(lines, "\n"))
		}
	}
	// Replay tells a watcher the same.
	var replayed []string
	for _, f := range rep.ReloadFrames("w-cy", 12, dir(t, before), dir(t, after)) {
		replayed = append(replayed, line(t, f))
	}
	if !slices.Equal(replayed, want["w-cy"]) {
		t.Errorf("replayed %v, want %v", replayed, want["w-cy"])
	}
	// Live changes follow the new teams.
	rec.lines = map[string][]string{}
	rep.Apply(3, State{AgentID: "1003", State: "ready"}, "", false, nil, rec.deliver)
	if len(rec.lines["w-sue"]) != 1 || len(rec.lines["w-ann"]) != 1 || len(rec.lines["w-cy"]) != 1 {
		t.Fatalf("after the reload: %v", rec.lines)
	}
	// A reload with no change tells nobody anything.
	rec.lines = map[string][]string{}
	rep.SetDirectory(12, dir(t, after), rec.deliver)
	if len(rec.lines) != 0 {
		t.Fatalf("an unchanged directory produced %v", rec.lines)
	}
}
