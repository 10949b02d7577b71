package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// teamstatus logs in agents and watching supervisors (report.teamstatus.begin)
// and has the agents change state at -team-rate changes per second in all;
// each change carries its sent time as the reason, so watchers measure
// setState → memberstatuschanged latency.
func (r *runner) teamstatus(ctx context.Context) (map[string]any, error) {
	a, s := r.cfg.teamAgents, r.cfg.teamSups
	teams := teamCount(r.dirAgents)
	watchers := make([]int64, teams) // watchers per team: supervisor j watches team j mod teams
	for j := range s {
		watchers[j%teams]++
	}
	var total atomic.Int64
	m := startMeter(r.t.pid)
	agents, err := connectAll(ctx, r.wsURL(), a, r.cfg.workers, watchOpts{}, func(ctx context.Context, i int, c *wsClient) error {
		return c.login(ctx, agentID(i))
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(agents)
	sups, err := connectAll(ctx, r.wsURL(), s, r.cfg.workers,
		watchOpts{name: "report.teamstatus.memberstatuschanged", sentKey: `"reason":"`, total: &total},
		func(ctx context.Context, i int, c *wsClient) error {
			if err := c.login(ctx, supervisorID(i)); err != nil {
				return err
			}
			_, err := c.request(ctx, "report.teamstatus.begin", map[string]string{"agentId": supervisorID(i)}, "")
			return err
		})
	if err != nil {
		return nil, err
	}
	defer closeAll(sups)
	setup := m.stop()
	r.logf("%d agents and %d watching supervisors ready in %.1fs", a, s, setup.Seconds)
	// The logins' own state changes may still be arriving: let them settle.
	waitFor(ctx, 10*time.Second, total.Load, func() bool { return false })
	for _, c := range sups {
		c.takeLatencies()
		c.recvd.Store(0)
	}
	base := total.Load()
	rate := r.cfg.teamRate
	n := int64(rate) * int64(r.cfg.duration/time.Second)
	var expected atomic.Int64
	var sendErrs atomic.Int64
	var next atomic.Int64
	wait := r.profile(r.cfg.duration)
	m = startMeter(r.t.pid)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				k := int(i % int64(a))
				state := "ready"
				if (i/int64(a))%2 == 1 {
					state = "not_ready"
				}
				c := agents[k]
				err := c.send("setState", map[string]string{"state": state, "reason": strconv.FormatInt(time.Now().UnixNano(), 10)}, c.session)
				if err != nil {
					sendErrs.Add(1)
					continue
				}
				expected.Add(watchers[(k/teamSize)%teams])
			}
		})
	}
	wg.Wait()
	sent := next.Load()
	if sent > n {
		sent = n
	}
	load := m.stop()
	want := expected.Load()
	drained := waitFor(ctx, 30*time.Second, total.Load, func() bool { return total.Load()-base >= want })
	wait()
	delivered := total.Load() - base
	var lat []int32
	var closed int64
	for _, c := range append(append([]*wsClient{}, agents...), sups...) {
		lat = append(lat, c.takeLatencies()...)
		if c.closeCode.Load() != 0 {
			closed++
		}
	}
	lf := latencies(lat)
	res := map[string]any{
		"agents": a, "supervisors": s, "rate": rate, "changes": sent - sendErrs.Load(), "send_errors": sendErrs.Load(),
		"expected": want, "delivered": delivered, "lost": max(0, want-delivered), "drained": drained,
		"closed_connections": closed, "watcher_latency": lf, "setup": setup, "load": load, "target_p99_ms": 20,
	}
	r.logf("%d agents × %d changes/s in all, %d watchers: %d/%d memberstatuschanged delivered, lost %d, watcher p50 %.1f p90 %.1f p99 %.1f max %.1f ms; client CPU %.2f, server CPU %.2f cores; target p99 ≤ 20 ms",
		a, rate, s, delivered, want, res["lost"], lf.P50, lf.P90, lf.P99, lf.Max, load.ClientCores, load.ServerCores)
	return res, nil
}

// runCeiling runs the ingest posters against a no-op net/http handler in a
// child process of its own (this binary with noopEnv set), for the ratio of
// durable ingest to what net/http alone reaches on this machine.
func runCeiling(ctx context.Context, cfg *config, stderr io.Writer) (map[string]any, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), noopEnv+"="+addr)
	cmd.Stderr = os.Stderr // a file: no copying goroutine shares stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start no-op server: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 || ctx.Err() != nil {
			return nil, fmt.Errorf("no-op server not up: %w", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	p := newPoster(base, cfg.posters)
	defer p.close()
	p.flood(ctx, cfg.posters, 300*time.Millisecond, func(int64) string { return "a000001" })
	warm := p.acked.Load()
	m := startMeter(cmd.Process.Pid)
	lat := p.flood(ctx, cfg.posters, cfg.duration, func(int64) string { return "a000001" })
	load := m.stop()
	n := p.acked.Load() - warm
	rate := float64(n) / load.Seconds
	lf := latencies(lat)
	fmt.Fprintf(stderr, "ceiling: %d posters against a no-op net/http handler: %.0f requests/s, p50 %.2f p99 %.2f ms; client CPU %.2f, server CPU %.2f cores\n",
		cfg.posters, rate, lf.P50, lf.P99, load.ClientCores, load.ServerCores)
	return map[string]any{"posters": cfg.posters, "requests": n, "requests_per_s": round(rate, 0), "latency": lf,
		"errors": p.errs.Load(), "load": load}, nil
}

// serveNoop serves a handler that reads the body and answers a fixed
// acknowledgement, until SIGTERM or five minutes.
func serveNoop(addr string, stderr io.Writer) int {
	if !isLoopbackAddr(addr) {
		fmt.Fprintln(stderr, "load: the no-op server wants a loopback address")
		return 2
	}
	ack := []byte(`{"accepted":true,"seq":1}`)
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(ack)
	})}
	go func() {
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		select {
		case <-sig:
		case <-time.After(5 * time.Minute):
		}
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(stderr, "load: no-op server:", err)
		return 1
	}
	return 0
}
