package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"iproc/reporting/directory"
)

// benchDirectory writes a directory of one team "T" with agents a000…
// (members) and supervisors s00… (its supervisors), all with testPassword
// at bcrypt cost 4, and returns its path.
func benchDirectory(b *testing.B, agents, supervisors int) string {
	b.Helper()
	hash, err := directory.HashPassword(testPassword, 4)
	if err != nil {
		b.Fatal(err)
	}
	var people []map[string]any
	var members, sups []string
	for i := range agents {
		id := fmt.Sprintf("a%03d", i)
		members = append(members, id)
		people = append(people, map[string]any{"id": id, "name": "Agent " + id, "type": "Agent", "extension": fmt.Sprintf("5%03d", i), "passwordHash": hash})
	}
	for i := range supervisors {
		id := fmt.Sprintf("s%02d", i)
		sups = append(sups, id)
		people = append(people, map[string]any{"id": id, "name": "Supervisor " + id, "type": "Supervisor", "passwordHash": hash})
	}
	doc := map[string]any{"agents": people, "teams": []any{map[string]any{"id": "T", "name": "Big team", "members": members, "supervisors": sups}}}
	path := filepath.Join(b.TempDir(), "directory.json")
	if err := os.WriteFile(path, []byte(jsonOf(doc)), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// procCPU returns the user+system CPU time the process pid has used, from
// /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse stat %q", s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// selfCPU returns the CPU time this process has used (getrusage).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchWatcher counts and times one supervisor's memberstatuschanged events
// for the benchmark's changes (reason "c<i>").
type benchWatcher struct {
	c    *client
	got  atomic.Int64
	mu   sync.Mutex
	lats []time.Duration
	last int64 // the seq of the last memberstatuschanged received
	late int   // memberstatuschanged received after one with a higher seq
}

// benchAgent times one agent's setState answers (durable: sent after the
// commit) against the time each was sent.
type benchAgent struct {
	c    *client
	sid  string
	mu   sync.Mutex
	sent map[string]time.Time // request id → sent
	lats []time.Duration
}

// setState sends a state change; mu is held across the send so that the
// answer cannot be read before its id is known.
func (a *benchAgent) setState(state, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := time.Now()
	id := a.c.send("setState", map[string]any{"state": state, "reason": reason}, a.sid)
	a.sent[id] = at
}

// consume reads a's frames until stop, timing the setState answers.
func (a *benchAgent) consume(stop <-chan struct{}) {
	for {
		var m map[string]any
		select {
		case m = <-a.c.frames:
		case <-stop:
			return
		}
		now := time.Now()
		if m["command"] != "setState" || m["result"] != "success" {
			continue
		}
		id, _ := m["id"].(string)
		a.mu.Lock()
		if at, ok := a.sent[id]; ok {
			a.lats = append(a.lats, now.Sub(at))
		}
		a.mu.Unlock()
	}
}

// BenchmarkTeamStatus measures SPEC §9's teamstatus scenario against the
// built binary on loopback: one team of 500 agents whose agents together
// change state 50 times a second (setState ready / not_ready with a reason /
// ACW, round robin), watched by 50 supervisors. Each iteration is one state
// change. It reports the watcher event rate, the latency from setState sent
// to memberstatuschanged received by each watcher (p50, p99, max), the
// latency of the setState answer itself (ack-p99: the durable commit), and the
// CPU per state change of the server (from /proc) and of the test process
// (getrusage: the 550 WebSocket clients). Run it with a fixed count, for
// example -benchtime=1000x (20 s).
func BenchmarkTeamStatus(b *testing.B) {
	const nAgents, nSups, perSecond = 500, 50, 50
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc for the server's CPU time")
	}
	p := startBinary(b, "", nil, "--directory", benchDirectory(b, nAgents, nSups), "--data", b.TempDir(), "--log-level", "warn")
	agents := make([]*benchAgent, nAgents)
	for i := range agents {
		a := &benchAgent{c: dial(b, p.WS), sent: map[string]time.Time{}}
		a.sid, _ = a.c.login(fmt.Sprintf("a%03d", i))
		agents[i] = a
	}
	watchers := make([]*benchWatcher, nSups)
	for i := range watchers {
		c := dial(b, p.WS)
		id := fmt.Sprintf("s%02d", i)
		c.login(id)
		success(b, c.request("report.teamstatus.begin", map[string]any{"agentId": id}, ""))
		added := c.waitEvent("report.teamstatus.teamadded")
		if n := len(added["data"].(map[string]any)["team"].(map[string]any)["members"].([]any)); n != nAgents+nSups {
			b.Fatalf("teamadded has %d members", n)
		}
		watchers[i] = &benchWatcher{c: c}
	}

	// The changes sent: index i is the change with reason "c<i>".
	var sentMu sync.Mutex
	var sent []time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range watchers {
		wg.Go(func() { w.consume(stop, &sentMu, &sent) })
	}
	for _, a := range agents {
		wg.Go(func() { a.consume(stop) })
	}
	defer func() { close(stop); wg.Wait() }()

	states := []string{"ready", "not_ready", "ACW"}
	tick := time.NewTicker(time.Second / perSecond)
	defer tick.Stop()
	cpu0, err := procCPU(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	self0, start := selfCPU(), time.Now()
	n := 0
	for b.Loop() {
		<-tick.C
		a := n % nAgents
		sentMu.Lock()
		sent = append(sent, time.Now())
		sentMu.Unlock()
		agents[a].setState(states[n%len(states)], "c"+strconv.Itoa(n))
		n++
	}
	sending := time.Since(start)
	checkFor(b, 30*time.Second, "every watcher has every change", func() bool {
		for _, w := range watchers {
			if w.got.Load() < int64(n) {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	cpu1, err := procCPU(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	self1 := selfCPU()

	var lats []time.Duration
	for _, w := range watchers {
		if got := w.got.Load(); got != int64(n) {
			b.Fatalf("a watcher got %d changes of %d", got, n)
		}
		w.mu.Lock()
		lats = append(lats, w.lats...)
		late := w.late
		w.mu.Unlock()
		if late > 0 {
			b.Fatalf("a watcher got %d events out of seq order", late)
		}
	}
	var acks []time.Duration
	checkFor(b, 30*time.Second, "every setState answered", func() bool {
		acks = acks[:0]
		for _, a := range agents {
			a.mu.Lock()
			acks = append(acks, a.lats...)
			a.mu.Unlock()
		}
		return len(acks) == n
	})
	slices.Sort(lats)
	slices.Sort(acks)
	pctOf := func(ds []time.Duration, q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Microseconds()) / 1000
	}
	pct := func(q float64) float64 { return pctOf(lats, q) }
	b.ReportMetric(pctOf(acks, 0.50), "ack-p50-ms")
	b.ReportMetric(pctOf(acks, 0.99), "ack-p99-ms")
	b.ReportMetric(float64(n)/sending.Seconds(), "changes/s")
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lats[len(lats)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(n), "server-cpu-µs/change")
	b.ReportMetric(float64((self1-self0).Microseconds())/float64(n), "client-cpu-µs/change")
}

// consume reads w's frames until stop, timing each memberstatuschanged of
// a benchmark change against the time it was sent.
func (w *benchWatcher) consume(stop <-chan struct{}, sentMu *sync.Mutex, sent *[]time.Time) {
	for {
		var m map[string]any
		select {
		case m = <-w.c.frames:
		case <-stop:
			return
		}
		now := time.Now()
		if m["name"] != "report.teamstatus.memberstatuschanged" {
			continue
		}
		num, _ := m["seq"].(json.Number)
		seq, _ := num.Int64()
		w.mu.Lock()
		if seq <= w.last {
			w.late++
		}
		w.last = max(w.last, seq)
		w.mu.Unlock()
		team, _ := m["data"].(map[string]any)["team"].(map[string]any)
		members, _ := team["members"].([]any)
		for _, mm := range members {
			reason, _ := mm.(map[string]any)["reason"].(string)
			i, err := strconv.Atoi(strings.TrimPrefix(reason, "c"))
			if !strings.HasPrefix(reason, "c") || err != nil {
				continue // a login of the set-up
			}
			sentMu.Lock()
			at := (*sent)[i]
			sentMu.Unlock()
			w.mu.Lock()
			w.lats = append(w.lats, now.Sub(at))
			w.mu.Unlock()
			w.got.Add(1)
		}
	}
}
