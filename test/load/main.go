// Command load is iproc's load tool: it runs scenarios against iproc over
// loopback and prints, for each, one JSON line of figures on stdout and a
// readable summary on stderr (SPEC §9).
//
// Usage:
//
//	go run ./test/load [-scenario idle,fanout,saturation,ingest,teamstatus,ceiling|all] [flags]
//
// By default each scenario gets a fresh server: the tool builds ./cmd/iproc,
// writes a directory hashed at bcrypt cost 4, and starts the binary on a
// free 127.0.0.1 port with a temp --data folder. With -addr it targets a
// running server instead (whose directory must come from -write-directory).
// Every loop is bounded by count and time; the tool stops by itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// config holds the flags.
type config struct {
	scenarios []string
	addr      string
	pid       int
	binary    string
	pkg       string
	pprofAddr string
	profDir   string
	serverEnv []string

	idle       int
	settle     time.Duration
	fanoutSubs int
	fanoutRate int
	fanoutPost int
	satPost    int
	duration   time.Duration
	window     int
	posters    int
	ingestSubs int
	// ingestFiltered makes the ingest subscribers supervisors, each
	// filtered to the events of one agent.
	ingestFiltered bool
	teamAgents     int
	teamSups       int
	teamRate       int
	workers        int
	scenarioMax    time.Duration
}

// agents is how many agents the generated directory needs.
func (c *config) agents() int {
	n := 1
	for _, s := range c.scenarios {
		switch s {
		case "idle":
			n = max(n, c.idle)
		case "ingest":
			n = max(n, c.ingestSubs)
		case "teamstatus":
			n = max(n, c.teamAgents)
		}
	}
	return n
}

// supervisors is how many supervisors the generated directory needs.
func (c *config) supervisors() int {
	n := 1
	for _, s := range c.scenarios {
		switch s {
		case "fanout", "saturation", "naive-fanout", "naive-saturation":
			n = max(n, c.fanoutSubs)
		case "ingest":
			if c.ingestFiltered {
				n = max(n, c.ingestSubs)
			}
		case "teamstatus":
			n = max(n, c.teamSups)
		}
	}
	return n
}

var allScenarios = []string{"idle", "fanout", "naive-fanout", "saturation", "naive-saturation", "ingest", "teamstatus", "ceiling"}

// noopEnv, when set in the environment, makes this binary serve the no-op
// ceiling handler on its address instead (the ceiling scenario's child).
const noopEnv = "IPROC_LOAD_NOOP_ADDR"

func main() {
	if addr := os.Getenv(noopEnv); addr != "" {
		os.Exit(serveNoop(addr, os.Stderr))
	}
	if addr := os.Getenv(naiveEnv); addr != "" {
		os.Exit(serveNaive(addr, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &config{}
	scen := fs.String("scenario", "all", "comma-separated: "+strings.Join(allScenarios, ",")+", or all")
	fs.StringVar(&cfg.addr, "addr", "", "host:port of a running iproc (loopback); empty: start one per scenario")
	fs.IntVar(&cfg.pid, "pid", 0, "pid of the running iproc given with -addr, for its CPU and RSS")
	fs.StringVar(&cfg.binary, "binary", "", "prebuilt iproc binary (default: go build -pkg)")
	fs.StringVar(&cfg.pkg, "pkg", "./cmd/iproc", "package built when -binary is empty")
	fs.StringVar(&cfg.pprofAddr, "pprof", "", "start the server with --pprof ADDR (loopback) to profile it")
	fs.StringVar(&cfg.profDir, "profile-dir", "", "with -pprof: write a CPU profile of the server's measured phase per scenario here")
	gogc := fs.String("server-gogc", "", "GOGC for the started server (empty: the Go default)")
	fs.IntVar(&cfg.idle, "idle-sessions", 10000, "idle: sessions logged in and subscribed")
	fs.DurationVar(&cfg.settle, "settle", 30*time.Second, "idle: how long the sessions stay idle before the server's memory is read (sampled every 5 s)")
	fs.IntVar(&cfg.fanoutSubs, "subscribers", 5000, "fanout, saturation: subscribed supervisors")
	fs.IntVar(&cfg.fanoutRate, "rate", 20, "fanout: notifications per second")
	fs.IntVar(&cfg.fanoutPost, "fanout-posters", 4, "fanout: concurrent publishers")
	fs.IntVar(&cfg.satPost, "saturation-posters", 16, "saturation: concurrent publishers")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time of fanout, saturation, ingest, teamstatus, ceiling")
	fs.IntVar(&cfg.window, "window", 64, "saturation: most notifications posted but not yet delivered to every subscriber")
	fs.IntVar(&cfg.posters, "posters", 16, "ingest, ceiling: concurrent posters")
	fs.IntVar(&cfg.ingestSubs, "ingest-subscribers", 1000, "ingest: subscribed agents (each event goes to one)")
	fs.BoolVar(&cfg.ingestFiltered, "ingest-filtered", false, "ingest: the subscribers are supervisors, each with a filter on one agent's GSW_AGENT_ID (each event still goes to one)")
	fs.BoolVar(&netHTTP, "net-http-client", false, "ingest, ceiling, fanout: post with net/http's client instead of the tool's raw keep-alive HTTP/1.1 client (to compare the two)")
	fs.IntVar(&cfg.teamAgents, "team-agents", 500, "teamstatus: agents changing state (teams of 50)")
	fs.IntVar(&cfg.teamSups, "team-supervisors", 50, "teamstatus: watching supervisors")
	fs.IntVar(&cfg.teamRate, "team-rate", 50, "teamstatus: state changes per second, all agents together")
	fs.IntVar(&cfg.workers, "connect-workers", 64, "parallel logins while setting up")
	fs.DurationVar(&cfg.scenarioMax, "scenario-timeout", 3*time.Minute, "upper bound of one scenario")
	selfProf := fs.String("self-profile", "", "write a CPU profile of the load tool itself to this file")
	writeDir := fs.String("write-directory", "", "write the generated directory for -addr use to this file and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scen == "all" {
		cfg.scenarios = allScenarios
	} else {
		for _, s := range strings.Split(*scen, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.scenarios = append(cfg.scenarios, s)
			}
		}
	}
	for _, s := range cfg.scenarios {
		if !contains(allScenarios, s) {
			fmt.Fprintf(stderr, "load: unknown scenario %q (want %s)\n", s, strings.Join(allScenarios, ", "))
			return 2
		}
	}
	if *gogc != "" {
		cfg.serverEnv = append(cfg.serverEnv, "GOGC="+*gogc)
	}
	if *writeDir != "" {
		if err := writeDirectory(*writeDir, cfg.agents(), cfg.supervisors()); err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		return 0
	}
	if cfg.addr != "" && !isLoopbackAddr(cfg.addr) {
		fmt.Fprintf(stderr, "load: -addr %s is not a loopback address\n", cfg.addr)
		return 2
	}
	fmt.Fprintf(stderr, "load: RLIMIT_NOFILE %d\n", raiseNoFile())
	if *selfProf != "" {
		f, err := os.Create(*selfProf)
		if err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.addr == "" && cfg.binary == "" {
		dir, err := os.MkdirTemp("", "iproc-load-bin-")
		if err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if cfg.binary, err = buildServer(dir, cfg.pkg); err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
	}
	results := map[string]map[string]any{}
	status := 0
	for _, s := range cfg.scenarios {
		res, err := runScenario(ctx, cfg, s, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "load: %s: %v\n", s, err)
			status = 1
			if res == nil {
				res = map[string]any{}
			}
			res["error"] = err.Error()
		}
		res["scenario"] = s
		results[s] = res
		line, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(line))
	}
	for _, pair := range [][2]string{{"fanout", "naive-fanout"}, {"saturation", "naive-saturation"}} {
		if r := fanoutRatio(results[pair[0]], results[pair[1]]); r != nil {
			r["scenario"] = "ratio-" + pair[0]
			line, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(line))
			fmt.Fprintf(stderr, "ratio: %s p99 %.1f ms vs naive hub %.1f ms (×%.2f); deliveries/s %.0f vs %.0f (×%.2f), same run\n",
				pair[0], r["p99_ms"], r["naive_p99_ms"], r["p99_to_naive"], r["deliveries_per_s"], r["naive_deliveries_per_s"], r["deliveries_to_naive"])
		}
	}
	if in, ok := results["ingest"]; ok {
		if ce, ok := results["ceiling"]; ok {
			a, _ := in["acks_per_s"].(float64)
			b, _ := ce["requests_per_s"].(float64)
			if b > 0 {
				r := map[string]any{"scenario": "ratio", "ingest_acks_per_s": a, "ceiling_requests_per_s": b, "ingest_to_ceiling": round(a/b, 3)}
				line, _ := json.Marshal(r)
				fmt.Fprintln(stdout, string(line))
				fmt.Fprintf(stderr, "ratio: durable ingest %.0f acks/s = %.1f%% of the no-op net/http ceiling %.0f req/s (same run)\n", a, 100*a/b, b)
			}
		}
	}
	return status
}

// runScenario runs one scenario against a fresh server (or -addr).
func runScenario(ctx context.Context, cfg *config, name string, stderr io.Writer) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.scenarioMax)
	defer cancel()
	if name == "ceiling" {
		return runCeiling(ctx, cfg, stderr)
	}
	if name == "naive-fanout" || name == "naive-saturation" {
		t, err := startNaive(ctx)
		if err != nil {
			return nil, err
		}
		defer t.stop()
		r := &runner{cfg: cfg, t: t, log: stderr, name: name}
		return r.fanout(ctx, name == "naive-saturation")
	}
	t := &target{addr: cfg.addr, pid: cfg.pid}
	dirAgents := cfg.agents() // the directory of -write-directory
	if cfg.addr == "" {
		// A fresh server per scenario, with a directory sized for it.
		one := *cfg
		one.scenarios = []string{name}
		dirAgents = one.agents()
		var err error
		if t, err = startTarget(ctx, &one); err != nil {
			return nil, err
		}
		defer t.stop()
	}
	r := &runner{cfg: cfg, t: t, log: stderr, name: name, dirAgents: dirAgents}
	switch name {
	case "idle":
		return r.idle(ctx)
	case "fanout":
		return r.fanout(ctx, false)
	case "saturation":
		return r.fanout(ctx, true)
	case "ingest":
		return r.ingest(ctx)
	case "teamstatus":
		return r.teamstatus(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fanoutRatio compares iproc's figures of a fanout scenario with the naive
// hub's of the same run; nil when either is missing.
func fanoutRatio(ip, naive map[string]any) map[string]any {
	if ip == nil || naive == nil {
		return nil
	}
	p99 := func(m map[string]any) float64 {
		if l, ok := m["latency"].(latencyFigures); ok {
			return l.P99
		}
		return 0
	}
	rate := func(m map[string]any) float64 { v, _ := m["deliveries_per_s"].(float64); return v }
	a, b := p99(ip), p99(naive)
	c, d := rate(ip), rate(naive)
	if b == 0 || d == 0 {
		return nil
	}
	return map[string]any{"p99_ms": a, "naive_p99_ms": b, "p99_to_naive": round(a/b, 2),
		"deliveries_per_s": c, "naive_deliveries_per_s": d, "deliveries_to_naive": round(c/d, 2)}
}
