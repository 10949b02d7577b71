package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"iproc/server"
)

// cdrJSON is a seed 004 CDR whose internal_call_ref is ref.
func cdrJSON(ref, ext string) string {
	return jsonOf(map[string]any{
		"ext": ext, "internal_call_ref": ref, "custom_call_ref": "CUST-" + ref,
		"disposition": "ANSWERED", "SIP_termination_code": "200", "campaign_ref": "camp-7",
		"client_number": "27821234567", "dial_number": "27105550000",
	})
}

// pushCDRs LPUSHes CDRs prefix-0 … prefix-(n-1) to key, in order, in
// pipelines of 100. A push that fails is retried (for up to 30 s each), as
// a dialer would: if the failed push had in fact landed, the copy is the
// same CDR twice, which iproc stores once.
func pushCDRs(t testing.TB, rdb *redis.Client, key, prefix string, n int, ext func(i int) string) error {
	for start := 0; start < n; start += 100 {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := rdb.Pipelined(context.Background(), func(p redis.Pipeliner) error {
				for i := start; i < min(start+100, n); i++ {
					p.LPush(context.Background(), key, cdrJSON(fmt.Sprintf("%s-%d", prefix, i), ext(i)))
				}
				return nil
			})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("push %s-%d: %w", prefix, start, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func ext5001(int) string { return "5001" }

// cdrCounts collects dialer.cdr events from clients until every ref of
// want was seen or the timeout passes, and returns how often each
// internal_call_ref arrived (all clients together).
type cdrCounter struct {
	counts map[string]int
	seqs   map[int64]int
}

func newCDRCounter() *cdrCounter {
	return &cdrCounter{counts: map[string]int{}, seqs: map[int64]int{}}
}

func (cc *cdrCounter) add(t testing.TB, m map[string]any) {
	if m["name"] != "dialer.cdr" {
		return
	}
	data, _ := m["data"].(map[string]any)
	ref, _ := data["internal_call_ref"].(string)
	cc.counts[ref]++
	n, _ := m["seq"].(json.Number).Int64()
	cc.seqs[n]++
}

// collect reads the clients' frames until every ref prefix-0…n-1 and the
// marker ref were seen, or timeout.
func (cc *cdrCounter) collect(t testing.TB, timeout time.Duration, prefix string, n int, clients ...*client) {
	t.Helper()
	missing := func() int {
		k := 0
		for i := range n {
			if cc.counts[fmt.Sprintf("%s-%d", prefix, i)] == 0 {
				k++
			}
		}
		return k
	}
	for _, c := range clients {
		for _, m := range c.pending {
			cc.add(t, m)
		}
		c.pending = nil
	}
	deadline := time.Now().Add(timeout)
	for missing() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d CDRs %s-* not delivered", missing(), n, prefix)
		}
		got := false
		for _, c := range clients {
			select {
			case m := <-c.frames:
				cc.add(t, m)
				got = true
			default:
			}
		}
		if !got {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// exactlyOnce fails unless every ref prefix-0…n-1 arrived exactly once and
// no seq arrived twice.
func (cc *cdrCounter) exactlyOnce(t testing.TB, prefix string, n int) {
	t.Helper()
	for i := range n {
		ref := fmt.Sprintf("%s-%d", prefix, i)
		if cc.counts[ref] != 1 {
			t.Fatalf("CDR %s delivered %d times", ref, cc.counts[ref])
		}
	}
	for seq, k := range cc.seqs {
		if k != 1 {
			t.Fatalf("seq %d delivered %d times", seq, k)
		}
	}
}

// settle delivers a marker CDR and collects until it arrived on every
// client, so that anything sent before it (a duplicate) was counted.
func (cc *cdrCounter) settle(t testing.TB, rdb *redis.Client, key, marker string, clients ...*client) {
	t.Helper()
	if err := rdb.LPush(context.Background(), key, cdrJSON(marker, "5001")).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		m := c.next("marker CDR", func(m map[string]any) bool {
			d, _ := m["data"].(map[string]any)
			return m["name"] == "dialer.cdr" && d["internal_call_ref"] == marker
		})
		_ = m
		for _, m := range c.pending {
			cc.add(t, m)
		}
		c.pending = nil
	}
}

func cdrServer(t testing.TB, r *redisServer, key string) *testServer {
	return startServer(t, func(c *server.Config) { c.RedisURL, c.CDRKey = r.URL, key })
}

func readyz(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m["reason"]
}

func listLen(t testing.TB, rdb *redis.Client, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func processingEmpty(t testing.TB, rdb *redis.Client, key string) bool {
	keys, err := rdb.Keys(context.Background(), key+":processing:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if listLen(t, rdb, k) > 0 {
			return false
		}
	}
	return true
}

// 1,000 CDRs reach a subscribed supervisor once each; an agent gets only
// those of its extension; the journey is found by either call reference;
// the lists end empty.
func TestCDRThousandDeliveredOnceToSupervisor(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key = "enigma:notifications:campaigns"
	ts := cdrServer(t, r, key)
	checkFor(t, 10*time.Second, "readyz 200", func() bool { s, _ := readyz(t, ts.URL); return s == 200 })
	sup, _, _ := subscribed(t, ts, "2001")
	agent, _, _ := subscribed(t, ts, "1001") // extension 5001
	const n = 1000
	ext := func(i int) string { return []string{"5001", "5002"}[i%2] }
	if err := pushCDRs(t, rdb, key, "K", n, ext); err != nil {
		t.Fatal(err)
	}
	cc := newCDRCounter()
	t0 := time.Now()
	cc.collect(t, 60*time.Second, "K", n, sup)
	t.Logf("1000 collected in %v", time.Since(t0))
	cc.settle(t, rdb, key, "MARK-1", sup)
	cc.exactlyOnce(t, "K", n)

	ac := newCDRCounter()
	for {
		m := agent.waitEvent("dialer.cdr")
		ac.add(t, m)
		if m["data"].(map[string]any)["internal_call_ref"] == "MARK-1" {
			break
		}
	}
	for ref, k := range ac.counts {
		var i int
		if _, err := fmt.Sscanf(ref, "K-%d", &i); err == nil && (i%2 != 0 || k != 1) {
			t.Fatalf("agent 1001 (ext 5001) got CDR %s %d times", ref, k)
		}
	}
	if len(ac.counts) != n/2+1 {
		t.Fatalf("agent got %d CDRs, want %d", len(ac.counts), n/2+1)
	}
	for _, id := range []string{"K-10", "CUST-K-10"} {
		j := success(t, sup.request("report.calljourney", map[string]any{"CallId": id}, ""))
		steps, _ := j["CallJourney"].([]any)
		if len(steps) != 1 || !strings.Contains(jsonOf(steps[0]), "CDR") {
			t.Fatalf("journey of %s = %v", id, j)
		}
	}
	if listLen(t, rdb, key) != 0 || !processingEmpty(t, rdb, key) {
		t.Fatal("lists not empty after delivery")
	}
}

// A malformed element is moved to <key>:dead with the reason; the good
// ones around it are delivered.
func TestCDRMalformedGoesToDeadList(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key = "cdr:dead-test"
	ts := cdrServer(t, r, key)
	sup, _, _ := subscribed(t, ts, "2001")
	ctx := context.Background()
	for _, el := range []string{cdrJSON("GOOD-1", "5001"), "not json {", `{"ext":"5001"}`, "\xff\xfe", cdrJSON("GOOD-2", "5001")} {
		if err := rdb.LPush(ctx, key, el).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"GOOD-1", "GOOD-2"} {
		ev := sup.waitEvent("dialer.cdr")
		if got := ev["data"].(map[string]any)["internal_call_ref"]; got != ref {
			t.Fatalf("got %v, want %s", got, ref)
		}
	}
	dead, err := rdb.LRange(ctx, key+":dead", 0, -1).Result()
	if err != nil || len(dead) != 3 {
		t.Fatalf("dead list = %v, %v", dead, err)
	}
	var entries []map[string]any
	for _, d := range dead {
		var e map[string]any
		if err := json.Unmarshal([]byte(d), &e); err != nil {
			t.Fatalf("dead entry %q: %v", d, err)
		}
		if e["reason"] == "" || e["reason"] == nil {
			t.Fatalf("dead entry without reason: %v", e)
		}
		entries = append(entries, e)
	}
	// LPUSH order: newest first.
	if entries[2]["element"] != "not json {" || !strings.Contains(entries[1]["reason"].(string), "internal_call_ref") || entries[0]["elementBase64"] == nil {
		t.Fatalf("dead entries = %v", entries)
	}
	if listLen(t, rdb, key) != 0 || !processingEmpty(t, rdb, key) {
		t.Fatal("lists not empty")
	}
}

// The built binary is SIGKILLed while it consumes; restarted on the same
// data, it takes its leftovers again and the log holds every CDR once.
func TestCDRBinaryKilledMidStreamLosesNone(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key, n = "cdr:kill-test", 1000
	args := []string{"--directory", writeTestDirectory(t), "--data", t.TempDir(), "--session-grace", "2m", "--redis", r.URL, "--cdr-key", key}
	p := startBinary(t, "", nil, args...)
	sup := dial(t, p.WS)
	sid, token := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"dialer.cdr"}}, sid))
	pushed := make(chan error, 1)
	go func() { pushed <- pushCDRs(t, rdb, key, "KILL", n, ext5001) }()
	for range 200 {
		sup.waitEvent("dialer.cdr")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	t.Logf("killed; %d CDRs left in the list, %v in processing", listLen(t, rdb, key), !processingEmpty(t, rdb, key))

	t0 := time.Now()
	p2 := startBinary(t, "", nil, args...)
	t.Logf("restarted in %v", time.Since(t0))
	// Replay the whole log: every CDR exactly once.
	c, resp := resumeOn(t, p2.WS, sid, token, 0)
	success(t, resp)
	cc := newCDRCounter()
	cc.collect(t, 60*time.Second, "KILL", n, c)
	t.Logf("collected after %v", time.Since(t0))
	cc.settle(t, rdb, key, "MARK-KILL", c)
	cc.exactlyOnce(t, "KILL", n)
	checkFor(t, 10*time.Second, "lists empty", func() bool { return listLen(t, rdb, key) == 0 && processingEmpty(t, rdb, key) })
}

// Two instances of one domain consume one list: each CDR is taken by one
// of them, stored once in the shared log, and delivered once to a
// supervisor on either instance.
func TestCDRTwoInstancesConsumeOnce(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key, n = "cdr:two", 1000
	a, b := cdrServer(t, r, key), cdrServer(t, r, key)
	supA, _, _ := subscribed(t, a, "2001")
	supB, _, _ := subscribed(t, b, "3001")
	if err := pushCDRs(t, rdb, key, "TWO", n, ext5001); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*client{supA, supB} {
		cc := newCDRCounter()
		cc.collect(t, 60*time.Second, "TWO", n, c)
		cc.settle(t, rdb, key, fmt.Sprintf("MARK-TWO-%d", i), c)
		cc.exactlyOnce(t, "TWO", n)
	}
	checkFor(t, 10*time.Second, "lists empty", func() bool { return listLen(t, rdb, key) == 0 && processingEmpty(t, rdb, key) })
	sa, _ := cdrCounts(t, a.URL)
	sb, _ := cdrCounts(t, b.URL)
	if sa+sb != n+2 {
		t.Fatalf("stored %d + %d, want %d in all", sa, sb, n+2)
	}
	t.Logf("instance A stored %d, B %d", sa, sb)
}

// Redis is restarted (AOF, fsync always) while CDRs flow: /readyz says
// so, the consumer reconnects, and every CDR arrives once.
func TestCDRRedisRestartedUnderLoad(t *testing.T) {
	r := startRedis(t, redisOptions{Durable: true})
	rdb := r.Client()
	const key, n = "cdr:restart", 1000
	ts := cdrServer(t, r, key)
	sup, _, _ := subscribed(t, ts, "2001")
	var wg sync.WaitGroup
	var pushErr error
	wg.Go(func() { pushErr = pushCDRs(t, rdb, key, "RS", n, ext5001) })
	cc := newCDRCounter()
	for range 200 {
		cc.add(t, sup.waitEvent("dialer.cdr"))
	}
	r.Stop()
	checkFor(t, 10*time.Second, "readyz 503 naming redis", func() bool {
		s, reason := readyz(t, ts.URL)
		return s == 503 && strings.Contains(reason, "redis")
	})
	r.start()
	wg.Wait()
	if pushErr != nil {
		t.Fatal(pushErr)
	}
	checkFor(t, 15*time.Second, "readyz 200 again", func() bool { s, _ := readyz(t, ts.URL); return s == 200 })
	cc.collect(t, 60*time.Second, "RS", n, sup)
	cc.settle(t, rdb, key, "MARK-RS", sup)
	cc.exactlyOnce(t, "RS", n)
}

// A CDR stored but not yet removed when its instance died (simulated by
// putting it back into the processing list) is taken again at start-up and
// produces no second event, with the Redis event log and with the embedded
// one.
func TestCDRTakenAgainAfterCrashIsStoredOnce(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) { testCDRTakenAgain(t, local) })
	}
}

func testCDRTakenAgain(t *testing.T, local bool) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key = "cdr:again"
	data := t.TempDir()
	start := func() *testServer {
		return startServer(t, func(c *server.Config) {
			c.RedisURL, c.CDRKey, c.DataDir, c.LocalStore = r.URL, key, data, local
		})
	}
	ts := start()
	sup, _, _ := subscribed(t, ts, "2001")
	el := cdrJSON("AGAIN-1", "5001")
	if err := rdb.LPush(context.Background(), key, el).Err(); err != nil {
		t.Fatal(err)
	}
	first := seqOf(t, sup.waitEvent("dialer.cdr"))
	checkFor(t, 5*time.Second, "list empty", func() bool { return listLen(t, rdb, key) == 0 && processingEmpty(t, rdb, key) })
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(data, "instance-id"))
	if err != nil {
		t.Fatal(err)
	}
	proc := key + ":processing:" + strings.TrimSpace(string(id))
	if err := rdb.LPush(context.Background(), proc, el).Err(); err != nil {
		t.Fatal(err)
	}
	ts2 := start()
	checkFor(t, 10*time.Second, "leftover taken", func() bool { return listLen(t, rdb, proc) == 0 })
	if stored, dups := cdrCounts(t, ts2.URL); dups != 1 || stored != 0 {
		t.Fatalf("after restart: %d stored, %d duplicates; want one duplicate and nothing stored", stored, dups)
	}
	sup2, _, _ := subscribed(t, ts2, "3001")
	if err := rdb.LPush(context.Background(), key, cdrJSON("AGAIN-2", "5001")).Err(); err != nil {
		t.Fatal(err)
	}
	if n := seqOf(t, sup2.waitEvent("dialer.cdr")); n <= first {
		t.Fatalf("next CDR seq %d not after %d", n, first)
	}
}

// An unreachable --redis stops start-up with one line naming the setting,
// without the password of the URL.
func TestCDRUnreachableRedisStopsStartUp(t *testing.T) {
	url := "redis://:very-secret-pw@" + freePort(t) + "/0"
	cmd := exec.Command(binary(t), "serve", "--data", t.TempDir(), "--listen", freePort(t), "--redis", url)
	cmd.Env = append(os.Environ(), "IPROC_LOG_FORMAT=json")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("started with an unreachable Redis")
	}
	s := strings.TrimSpace(string(out))
	if !strings.Contains(s, "--redis") || strings.Contains(s, "very-secret-pw") || strings.Count(s, "\n") > 1 {
		t.Fatalf("output: %s", s)
	}
}

// What a stopped instance left in its processing list is reclaimed by
// another consumer of the list and delivered once.
func TestCDRLeftoversOfStoppedInstanceReclaimed(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	const key = "cdr:reclaim"
	dataA := t.TempDir()
	a := startServer(t, func(c *server.Config) { c.RedisURL, c.CDRKey, c.DataDir = r.URL, key, dataA })
	b := cdrServer(t, r, key)
	sup, _, _ := subscribed(t, b, "2001")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(dataA, "instance-id"))
	if err != nil {
		t.Fatal(err)
	}
	proc := key + ":processing:" + strings.TrimSpace(string(id))
	for i := range 3 { // as if A had died holding them
		if err := rdb.LPush(context.Background(), proc, cdrJSON(fmt.Sprintf("LEFT-%d", i), "5001")).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cc := newCDRCounter()
	cc.collect(t, 20*time.Second, "LEFT", 3, sup)
	cc.settle(t, rdb, key, "MARK-LEFT", sup)
	cc.exactlyOnce(t, "LEFT", 3)
	if listLen(t, rdb, proc) != 0 {
		t.Fatal("processing list of the stopped instance not empty")
	}
}

// A server with Redis (consumer, Redis log, tail, heartbeats) leaves no
// goroutine behind when it shuts down.
func TestCDRServerShutdownLeavesNoGoroutines(t *testing.T) {
	r := startRedis(t, redisOptions{})
	rdb := r.Client()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	before := goroutines()
	srv, err := server.New(server.Config{Directory: testDirectory(t), DataDir: t.TempDir(), RedisURL: r.URL, CDRKey: "cdr:leak"},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.LPush(context.Background(), "cdr:leak", cdrJSON("LEAK-1", "5001")).Err(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	checkFor(t, 10*time.Second, "CDR stored", func() bool { stored, _ := cdrCounts(t, hs.URL); return stored == 1 })
	hs.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "goroutines back to the start", func() bool { return goroutines() <= before })
}

// With a password in --redis, the binary consumes CDRs and its logs never
// show the password.
func TestCDRRedisPasswordNeverLogged(t *testing.T) {
	const pw = "s3cret-redis-pw"
	r := startRedis(t, redisOptions{Password: pw})
	rdb := r.Client()
	p := startBinary(t, "", nil, "--directory", writeTestDirectory(t), "--data", t.TempDir(), "--redis", r.URL, "--cdr-key", "cdr:pw", "--log-level", "debug")
	sup := dial(t, p.WS)
	sid, _ := sup.login("2001")
	success(t, sup.request("subscribe", map[string]any{"topics": []string{"dialer.cdr"}}, sid))
	for _, el := range []string{"garbage", cdrJSON("PW-1", "5001")} {
		if err := rdb.LPush(context.Background(), "cdr:pw", el).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sup.waitEvent("dialer.cdr")
	if out := p.output(); strings.Contains(out, pw) || !strings.Contains(out, "dead list") {
		t.Fatalf("logs: %s", out)
	}
}

// cdrCounts reads from /metrics how many CDRs the server stored and how
// many it found to be duplicates.
func cdrCounts(t testing.TB, base string) (stored, duplicates int) {
	t.Helper()
	m := scrape(t, base)
	return int(m[`iproc_events_in_total{source="dialer_cdr"}`]), int(m["iproc_duplicates_total"])
}
