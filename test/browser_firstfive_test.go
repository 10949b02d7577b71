package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"iproc/cmd/iproc/demo"
	"iproc/reporting/directory"
	"iproc/server"
)

// demoDirectoryFast is the bundled demo directory (same people, teams and
// extensions, so screenshots match the README) with every password set to
// testPassword at bcrypt cost 4.
func demoDirectoryFast(t *testing.T) *directory.Directory {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "reporting", "directory", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	hash, err := directory.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range doc["agents"].([]any) {
		a.(map[string]any)["passwordHash"] = hash
	}
	b, _ := json.Marshal(doc)
	dir, err := directory.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// restartable is an in-process server on a fixed loopback address and data
// folder, which a test can stop and start again, as an operator would.
type restartable struct {
	t    *testing.T
	cfg  server.Config
	srv  *server.Server
	done chan error
}

func newRestartable(t *testing.T, cfg server.Config) *restartable {
	t.Helper()
	cfg.Addr, cfg.DataDir = freePort(t), t.TempDir()
	r := &restartable{t: t, cfg: cfg}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) url() string { return "http://" + r.cfg.Addr }

func (r *restartable) start() {
	r.t.Helper()
	srv, err := server.New(r.cfg, zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.WarnLevel))
	if err != nil {
		r.t.Fatalf("server.New: %v", err)
	}
	var ln net.Listener
	checkFor(r.t, 10*time.Second, "listen on "+r.cfg.Addr, func() bool {
		ln, err = net.Listen("tcp", r.cfg.Addr)
		return err == nil
	})
	r.srv, r.done = srv, make(chan error, 1)
	go func() { r.done <- srv.Serve(ln) }()
}

func (r *restartable) stop() {
	if r.srv == nil {
		return
	}
	_ = r.srv.Close()
	if err := <-r.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.t.Errorf("serve: %v", err)
	}
	r.srv = nil
}

// TestBrowserFirstFiveMinutes drives the debug page as a new user does, at
// desktop (1280×800) and phone (390×844) size, with the demo simulator
// running against the bundled demo directory: log in as the supervisor and
// see labelled statuses, an exact time in state where the server sent
// `since`, no sideways scrolling, journeys opened from the event log, the
// session panel's rules; then the server is stopped (a banner says so,
// with the time of the data and the next retry, and the data is greyed)
// and started again (the banner goes, the session is back). Screenshots
// of each step are saved; with IPROC_UPDATE_SCREENSHOT=1 the desktop one
// becomes web/screenshot.png.
func TestBrowserFirstFiveMinutes(t *testing.T) {
	for _, vp := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			p := page{t: t, ctx: browserTab(t, 120*time.Second)}
			rs := newRestartable(t, server.Config{Directory: demoDirectoryFast(t), SessionGrace: time.Minute})
			stopDemo := runDemo(t, demo.Config{URL: rs.url(), Interval: 300 * time.Millisecond,
				StateMin: 20 * time.Second, StateMax: 90 * time.Second, DataDir: t.TempDir(),
				Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
			defer stopDemo()
			shots := t.TempDir()
			if d := os.Getenv("IPROC_SCREENSHOT_DIR"); d != "" {
				shots = d
			}
			shot := func(name string) []byte {
				t.Helper()
				b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
				if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
					t.Fatalf("screenshot %s: %v", name, err)
				}
				if err := os.WriteFile(filepath.Join(shots, vp.name+"-"+name+".png"), b, 0o644); err != nil {
					t.Fatal(err)
				}
				return b
			}

			p.do("open the page", chromedp.EmulateViewport(vp.width, vp.height), chromedp.Navigate(rs.url()+"/"))
			p.waitFor("connected", `document.getElementById('status').textContent === 'connected'`)
			if shown := p.eval(`getComputedStyle(document.getElementById('conn-banner')).display`); shown != "none" {
				t.Errorf("connection banner shown (display %s) while connected", shown)
			}
			if shown := p.eval(`getComputedStyle(document.getElementById('model-field')).display`); shown != "none" {
				t.Errorf("the model field is shown though the server offers one model")
			}
			p.do("log in as the supervisor",
				chromedp.SendKeys(chromedp.CSS("#agent-id"), "2001"),
				chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
				chromedp.Click(chromedp.CSS("#login")))
			p.waitFor("logged in", `document.getElementById('status').textContent === 'logged in as 2001'`)
			p.waitFor("log in disabled while logged in", `document.getElementById('login').disabled`)
			p.waitFor("demo agents at work, shown in words",
				`[...document.querySelectorAll('#team-table tr[data-member]')].filter(r => r.dataset.status !== 'logged_out').length >= 3 &&
				 [...document.querySelectorAll('#team-table td.status')].every(c => ['Ready', 'Not ready', 'After call work', 'Logged out'].includes(c.textContent))`)
			if codes := p.eval(`[...document.querySelectorAll('#team-table td.reason')].map(c => c.textContent).filter(t => /^\d+$/.test(t)).join(',')`); codes != "" {
				t.Errorf("bare reason codes in the team table: %s", codes)
			}

			// A member whose state began before the page: with `since`, the
			// page shows the exact time in state, not a lower bound.
			since := time.Now().Add(-(time.Hour + 2*time.Minute + 3*time.Second)).UTC().Format("2006-01-02T15:04:05.000Z")
			p.do("a team event with since", chromedp.Evaluate[chromedp.Void](`void iproc.client.receive(JSON.stringify(
				{name: 'report.teamstatus.memberstatuschanged', data: {agentId: '2001', team: {teamId: 't1',
				 members: [{memberId: '3001', status: 'not_ready', reason: '1', since: '`+since+`'}]}}}))`))
			p.waitFor("exact time in state from since", `(r => r && /^1:02:0\d$/.test(r.querySelector('.time').textContent) &&
				r.querySelector('.reason').textContent === 'Break')(document.querySelector('tr[data-member="3001"]'))`)

			// The page fits the screen: nothing scrolls sideways.
			if w := p.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`); w != "0" && w[0] != '-' {
				t.Errorf("the page is %s px wider than the %d px screen", w, vp.width)
			}

			// A call event in the log opens its journey.
			p.waitFor("a contact-processed event with a journey link",
				`document.querySelector('#event-log .event[data-name="outbound.contactProcessed"] .journey-link') !== null`)
			callID := p.eval(`(e => { e.querySelector('details').open = true; return JSON.parse(e.querySelector('pre').textContent).GSW_CALL_ATTEMPT_GUID; })(
				document.querySelector('#event-log .event[data-name="outbound.contactProcessed"]'))`)
			p.do("open the journey", chromedp.Click(chromedp.CSS(`#event-log .event[data-name="outbound.contactProcessed"] .journey-link`)))
			p.waitFor("journey drawn, its call named once", `(c => c && c.textContent.includes('`+callID+`'))(document.getElementById('journey-call')) &&
				document.querySelectorAll('#journey .timeline .bar').length >= 1 &&
				![...document.querySelectorAll('#journey .journey-table td')].some(td => td.textContent === '`+callID+`')`)
			if w := p.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`); w != "0" && w[0] != '-' {
				t.Errorf("with a journey open the page is %s px wider than the %d px screen", w, vp.width)
			}

			// The console fills in the session for session commands.
			p.do("send getState without resource", chromedp.Evaluate[chromedp.Void](
				`void (document.getElementById('console-input').value = '{"command": "getState", "data": {}}', document.getElementById('console-send').click())`))
			p.waitFor("console getState succeeded", `(o => o.classList.contains('ok') && o.textContent.includes('"result": "success"'))(document.getElementById('console-output'))`)
			p.do("show the team table", chromedp.ScrollIntoView(chromedp.CSS("#team-table")))
			if vp.name == "desktop" && os.Getenv("IPROC_UPDATE_SCREENSHOT") == "1" {
				full, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("..", "web", "screenshot.png"), full, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			shot("1-working")

			// The server goes away: a banner says so, the data greys out.
			rs.stop()
			p.waitFor("connection-lost banner", `getComputedStyle(document.getElementById('conn-banner')).display !== 'none' && document.body.classList.contains('stale')`)
			text := p.eval(`document.getElementById('conn-banner-text').textContent`)
			if !regexp.MustCompile(`^Connection lost — data as of \d\d:\d\d:\d\d, (retrying in [1-5] s|reconnecting…)$`).MatchString(text) {
				t.Errorf("banner %q, want \"Connection lost — data as of HH:MM:SS, retrying in N s\"", text)
			}
			shot("2-connection-lost")

			// It comes back: within the capped retry the banner goes and the
			// session is resumed.
			rs.start()
			p.waitFor("banner gone, session back", `getComputedStyle(document.getElementById('conn-banner')).display === 'none' && !document.body.classList.contains('stale') &&
				document.getElementById('status').textContent === 'logged in as 2001'`)
			shot("3-back")

			// Logging out clears what belonged to the session.
			p.do("log out", chromedp.Evaluate[chromedp.Void](`void document.getElementById("logout").click()`))
			p.waitFor("reports cleared, log in enabled", `!document.getElementById('login').disabled &&
				document.querySelectorAll('#team-table tbody[data-team]').length === 0 &&
				document.getElementById('journey').children.length === 0 && document.getElementById('console-output').textContent === ''`)
			t.Logf("screenshots in %s", shots)
		})
	}
}
