package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const topicCP = "outbound.contactProcessed"

// runner runs one scenario against one target.
type runner struct {
	cfg  *config
	t    *target
	log  io.Writer
	name string
	// dirAgents is the number of agents of the server's directory, which
	// decides its teams.
	dirAgents int
}

func (r *runner) wsURL() string    { return "ws://" + r.t.addr + "/ws" }
func (r *runner) httpBase() string { return "http://" + r.t.addr }

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s: "+format+"\n", append([]any{r.name}, args...)...)
}

// serverMetrics reads a few gauges from the server's /metrics.
func (r *runner) serverMetrics() map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(r.httpBase() + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	want := []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
		"go_memstats_sys_bytes", "process_resident_memory_bytes", "iproc_slow_consumer_disconnects_total"}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && contains(want, f[0]) {
			out[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return out
}

// profile fetches a CPU profile of the server for d when -pprof and
// -profile-dir are set; the returned func waits for it.
func (r *runner) profile(d time.Duration) func() {
	if r.cfg.pprofAddr == "" || r.cfg.profDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d.Seconds()))
		resp, err := (&http.Client{Timeout: d + 30*time.Second}).Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.cfg.pprofAddr, secs))
		if err != nil {
			r.logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		_ = os.MkdirAll(r.cfg.profDir, 0o750)
		f, err := os.Create(filepath.Join(r.cfg.profDir, r.name+".pprof"))
		if err != nil {
			r.logf("profile: %v", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return func() { <-done }
}

// waitFor polls until cond holds, no progress was seen for 5 s, or limit.
func waitFor(ctx context.Context, limit time.Duration, progress func() int64, cond func() bool) bool {
	end := time.Now().Add(limit)
	last, lastAt := progress(), time.Now()
	for !cond() {
		if ctx.Err() != nil || time.Now().After(end) || time.Since(lastAt) > 5*time.Second {
			return false
		}
		time.Sleep(20 * time.Millisecond)
		if p := progress(); p != last {
			last, lastAt = p, time.Now()
		}
	}
	return true
}

// idle logs in N agents, subscribes each to every topic, waits, and reads
// the server's memory: RSS per session over the RSS before the logins.
func (r *runner) idle(ctx context.Context) (map[string]any, error) {
	n := r.cfg.idle
	before, _ := readProc(r.t.pid)
	m0 := r.serverMetrics()
	m := startMeter(r.t.pid)
	topics := []string{topicCP, "outbound.campaignGroupState", "callback.status", "dialer.cdr"}
	clients, err := connectAll(ctx, r.wsURL(), n, r.cfg.workers, watchOpts{}, func(ctx context.Context, i int, c *wsClient) error {
		if err := c.login(ctx, agentID(i)); err != nil {
			return err
		}
		return c.subscribe(ctx, topics...)
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	setup := m.stop()
	r.logf("%d sessions logged in and subscribed in %.1fs (%.0f logins/s); settling %s", n, setup.Seconds, float64(n)/setup.Seconds, r.cfg.settle)
	// RSS over the settle time: the Go runtime hands the login burst's
	// freed memory back to the OS in the background, within seconds.
	var series []float64
	rssAt := func() float64 {
		ps, _ := readProc(r.t.pid)
		return round((float64(ps.rss)-float64(before.rss))/float64(n)/1024, 2)
	}
	series = append(series, rssAt())
	for end := time.Now().Add(r.cfg.settle); time.Now().Before(end); {
		select {
		case <-time.After(min(5*time.Second, time.Until(end))):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		series = append(series, rssAt())
	}
	after, _ := readProc(r.t.pid)
	m1 := r.serverMetrics()
	per := func(a, b float64) float64 { return round((a-b)/float64(n)/1024, 2) }
	res := map[string]any{
		"sessions":                    n,
		"setup":                       setup,
		"logins_per_s":                round(float64(n)/setup.Seconds, 0),
		"rss_before_mib":              round(float64(before.rss)/(1<<20), 1),
		"rss_after_mib":               round(float64(after.rss)/(1<<20), 1),
		"rss_kib_per_session":         per(float64(after.rss), float64(before.rss)),
		"heap_inuse_kib_per_session":  per(m1["go_memstats_heap_inuse_bytes"], m0["go_memstats_heap_inuse_bytes"]),
		"stack_inuse_kib_per_session": per(m1["go_memstats_stack_inuse_bytes"], m0["go_memstats_stack_inuse_bytes"]),
		"goroutines_per_session":      round((m1["go_goroutines"]-m0["go_goroutines"])/float64(n), 2),
		"target_kib_per_session":      16,
	}
	r.logf("%d idle sessions: server RSS %.1f → %.1f MiB = %.2f KiB/session after %s idle (every 5 s from the last login: %v; heap %.2f, stacks %.2f KiB/session, %.2f goroutines/session); target ≤ 16 KiB",
		n, res["rss_before_mib"], res["rss_after_mib"], res["rss_kib_per_session"], r.cfg.settle, series, res["heap_inuse_kib_per_session"],
		res["stack_inuse_kib_per_session"], res["goroutines_per_session"])
	return res, nil
}

// fanout subscribes S supervisors to ContactProcessed and posts either R
// notifications per second for T (sat false) or, at saturation, as fast as
// the deliveries keep up (at most -window notifications not yet delivered to
// every subscriber).
func (r *runner) fanout(ctx context.Context, sat bool) (map[string]any, error) {
	s := r.cfg.fanoutSubs
	var total atomic.Int64
	m := startMeter(r.t.pid)
	clients, err := r.subscribeAll(ctx, s, supervisorID, &total)
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	setup := m.stop()
	r.logf("%d supervisors subscribed in %.1fs", s, setup.Seconds)
	posters := r.cfg.fanoutPost
	if sat {
		posters = r.cfg.satPost
	}
	p := newPoster(r.httpBase(), posters)
	defer p.close()
	var buf []byte
	if ok, _ := p.post(ctx, &buf, ""); !ok { // warm-up: every subscription is in force
		return nil, fmt.Errorf("warm-up post: %s", p.lastError())
	}
	if !waitFor(ctx, 30*time.Second, total.Load, func() bool { return total.Load() >= int64(s) }) {
		return nil, fmt.Errorf("warm-up: %d of %d subscribers got the first event", total.Load(), s)
	}
	for _, c := range clients {
		c.takeLatencies()
	}
	base := total.Load()
	p.acked.Store(0)
	wait := r.profile(r.cfg.duration)
	stagesBefore := histograms(r.httpBase())
	m = startMeter(r.t.pid)
	start := time.Now()
	var wg sync.WaitGroup
	if !sat {
		n := int64(r.cfg.fanoutRate) * int64(r.cfg.duration/time.Second)
		var next atomic.Int64
		for range r.cfg.fanoutPost {
			wg.Go(func() {
				var buf []byte
				for {
					i := next.Add(1) - 1
					if i >= n || ctx.Err() != nil {
						return
					}
					due := start.Add(time.Duration(i) * time.Second / time.Duration(r.cfg.fanoutRate))
					time.Sleep(time.Until(due))
					p.post(ctx, &buf, "")
				}
			})
		}
	} else {
		deadline := start.Add(r.cfg.duration)
		window := int64(r.cfg.window) * int64(s)
		for range posters {
			wg.Go(func() {
				var buf []byte
				for ctx.Err() == nil && time.Now().Before(deadline) {
					if p.acked.Load()*int64(s)-(total.Load()-base) > window {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					p.post(ctx, &buf, "")
				}
			})
		}
	}
	wg.Wait()
	postEnd := time.Since(start)
	inWindow := total.Load() - base
	load := m.stop()
	acked := p.acked.Load()
	expected := acked * int64(s)
	drained := waitFor(ctx, 30*time.Second, total.Load, func() bool { return total.Load()-base >= expected })
	deliverEnd := time.Since(start)
	stages := tailFigures(stagesBefore, histograms(r.httpBase()))
	wait()
	delivered := total.Load() - base
	var lost, reordered, closed int64
	var lat []int32
	for _, c := range clients {
		if miss := acked + 1 - c.recvd.Load(); miss > 0 {
			lost += miss
		}
		c.smu.Lock()
		reordered += c.reordered
		c.smu.Unlock()
		if c.closeCode.Load() != 0 {
			closed++
		}
		lat = append(lat, c.takeLatencies()...)
	}
	res := map[string]any{
		"subscribers": s, "published": acked, "post_errors": p.errs.Load(), "expected": expected,
		"delivered": delivered, "lost": lost, "reordered": reordered, "closed_connections": closed,
		"drained": drained, "setup": setup, "load": load, "latency": latencies(lat),
	}
	if stages != nil {
		res["server_stages"] = stages
		r.logf("server stages (bucket bounds, ms): %v", stages)
	}
	if sat {
		rate := float64(inWindow) / postEnd.Seconds()
		res["deliveries_per_s"] = round(rate, 0)
		res["published_per_s"] = round(float64(acked)/postEnd.Seconds(), 1)
		res["window"] = r.cfg.window
		res["posters"] = posters
		res["target_deliveries_per_s"] = 250000
		r.logf("saturation, %d subscribers: %.0f deliveries/s (%.1f notifications/s), lost %d, e2e p50 %.1f ms p99 %.1f ms; client CPU %.2f cores, server CPU %.2f cores; target ≥ 250,000/s",
			s, rate, res["published_per_s"], lost, latencies(lat).P50, latencies(lat).P99, load.ClientCores, load.ServerCores)
	} else {
		res["rate"] = r.cfg.fanoutRate
		res["deliveries_per_s"] = round(float64(delivered)/deliverEnd.Seconds(), 0)
		res["target_p99_ms"] = 50
		lf := latencies(lat)
		r.logf("%d subscribers × %d/s for %s: %d published, %d/%d delivered, lost %d, e2e p50 %.1f p90 %.1f p99 %.1f max %.1f ms; client CPU %.2f, server CPU %.2f cores; target 0 lost, p99 ≤ 50 ms",
			s, r.cfg.fanoutRate, r.cfg.duration, acked, delivered, expected, lost, lf.P50, lf.P90, lf.P99, lf.Max, load.ClientCores, load.ServerCores)
	}
	if p.errs.Load() > 0 {
		res["last_post_error"] = p.lastError()
	}
	return res, nil
}

// ingest subscribes agents to ContactProcessed and runs posters as fast as
// they can, each notification for one of the agents.
func (r *runner) ingest(ctx context.Context) (map[string]any, error) {
	a := r.cfg.ingestSubs
	var total atomic.Int64
	m := startMeter(r.t.pid)
	subscribe := r.subscribeAll
	if r.cfg.ingestFiltered {
		subscribe = r.subscribeFiltered
	}
	clients, err := subscribe(ctx, a, agentID, &total)
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	setup := m.stop()
	r.logf("%d subscribers (filtered supervisors: %v) subscribed in %.1fs", a, r.cfg.ingestFiltered, setup.Seconds)
	agent := func(i int64) string {
		if a == 0 {
			return ""
		}
		return agentID(int(i % int64(a)))
	}
	p := newPoster(r.httpBase(), r.cfg.posters)
	defer p.close()
	p.flood(ctx, r.cfg.posters, 300*time.Millisecond, agent) // warm-up: connections, first commits
	if !waitFor(ctx, 30*time.Second, total.Load, func() bool { return a == 0 || total.Load() >= p.acked.Load() }) {
		return nil, fmt.Errorf("warm-up: %d of %d delivered", total.Load(), p.acked.Load())
	}
	for _, c := range clients {
		c.takeLatencies()
	}
	base, warm := total.Load(), p.acked.Load()
	wait := r.profile(r.cfg.duration)
	m = startMeter(r.t.pid)
	ackLat := p.flood(ctx, r.cfg.posters, r.cfg.duration, agent)
	load := m.stop()
	acked := p.acked.Load() - warm
	drained := a == 0 || waitFor(ctx, 30*time.Second, total.Load, func() bool { return total.Load()-base >= acked })
	wait()
	delivered := total.Load() - base
	var lost int64
	if a > 0 {
		lost = max(0, acked-delivered)
	}
	var lat []int32
	var closed int64
	for _, c := range clients {
		lat = append(lat, c.takeLatencies()...)
		if c.closeCode.Load() != 0 {
			closed++
		}
	}
	rate := float64(acked) / load.Seconds
	res := map[string]any{
		"posters": r.cfg.posters, "subscribers": a, "filtered": r.cfg.ingestFiltered, "acked": acked, "acks_per_s": round(rate, 0),
		"ack_latency": latencies(ackLat), "post_errors": p.errs.Load(), "delivered": delivered, "lost": lost,
		"drained": drained, "closed_connections": closed, "e2e_latency": latencies(lat), "setup": setup, "load": load,
		"target_acks_per_s": 25000, "target_ack_p99_ms": 10,
	}
	if p.errs.Load() > 0 {
		res["last_post_error"] = p.lastError()
	}
	al := latencies(ackLat)
	r.logf("%d posters, %d subscribers: %.0f durable acks/s, ack p50 %.2f p90 %.2f p99 %.2f max %.1f ms, delivered %d, lost %d; client CPU %.2f, server CPU %.2f cores; target ≥ 25,000/s, p99 ≤ 10 ms",
		r.cfg.posters, a, rate, al.P50, al.P90, al.P99, al.Max, delivered, lost, load.ClientCores, load.ServerCores)
	return res, nil
}

// subscribeAll connects n clients, logs client i in as id(i) and subscribes
// it to ContactProcessed; total counts the notifications they all receive.
func (r *runner) subscribeAll(ctx context.Context, n int, id func(int) string, total *atomic.Int64) ([]*wsClient, error) {
	return connectAll(ctx, r.wsURL(), n, r.cfg.workers, watchOpts{name: topicCP, total: total}, func(ctx context.Context, i int, c *wsClient) error {
		if err := c.login(ctx, id(i)); err != nil {
			return err
		}
		return c.subscribe(ctx, topicCP)
	})
}

// subscribeFiltered connects n clients, logs client i in as supervisor i
// and subscribes it to ContactProcessed with a filter on agent id(i), so
// that each event goes to one supervisor through the routing index's
// filtered lists.
func (r *runner) subscribeFiltered(ctx context.Context, n int, id func(int) string, total *atomic.Int64) ([]*wsClient, error) {
	return connectAll(ctx, r.wsURL(), n, r.cfg.workers, watchOpts{name: topicCP, total: total}, func(ctx context.Context, i int, c *wsClient) error {
		if err := c.login(ctx, supervisorID(i)); err != nil {
			return err
		}
		_, err := c.request(ctx, "subscribe", map[string]any{"topics": []string{topicCP}, "filter": map[string]string{"GSW_AGENT_ID": id(i)}}, c.session)
		return err
	})
}
