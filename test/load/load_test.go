package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary be the ceiling scenario's child, as the
// tool's own binary is.
func TestMain(m *testing.M) {
	if addr := os.Getenv(noopEnv); addr != "" {
		os.Exit(serveNoop(addr, os.Stderr))
	}
	if addr := os.Getenv(naiveEnv); addr != "" {
		os.Exit(serveNaive(addr, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestScenariosSmoke runs every scenario at a tiny size against the built
// binary and checks that the figures are sane: every expected event
// delivered, none lost, no errors. Speed is not checked here: the figures of
// the full-size runs are in the README.
func TestScenariosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	var out, errOut bytes.Buffer
	args := []string{"-scenario", "all", "-pkg", "../../cmd/iproc", "-duration", "1s", "-settle", "200ms",
		"-idle-sessions", "20", "-subscribers", "10", "-rate", "20", "-fanout-posters", "2", "-saturation-posters", "4",
		"-posters", "4", "-ingest-subscribers", "10", "-team-agents", "20", "-team-supervisors", "4",
		"-team-rate", "20", "-connect-workers", "8", "-scenario-timeout", "60s"}
	code := run(args, &out, &errOut)
	t.Log(errOut.String())
	if code != 0 {
		t.Fatalf("load exited %d", code)
	}
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if e, ok := m["error"]; ok {
			t.Errorf("%v: %v", m["scenario"], e)
		}
		got[m["scenario"].(string)] = m
	}
	for _, s := range append(allScenarios, "ratio", "ratio-fanout", "ratio-saturation") {
		if got[s] == nil {
			t.Fatalf("no figures for %s in %s", s, out.String())
		}
	}
	num := func(s, k string) float64 {
		v, ok := got[s][k].(float64)
		if !ok {
			t.Fatalf("%s: no number %q in %v", s, k, got[s])
		}
		return v
	}
	for _, s := range []string{"fanout", "saturation", "naive-fanout", "naive-saturation", "teamstatus"} {
		if num(s, "lost") != 0 || num(s, "delivered") != num(s, "expected") || num(s, "expected") == 0 {
			t.Errorf("%s: delivered %v of %v, lost %v", s, got[s]["delivered"], got[s]["expected"], got[s]["lost"])
		}
	}
	if num("ingest", "lost") != 0 || num("ingest", "delivered") != num("ingest", "acked") || num("ingest", "acked") == 0 {
		t.Errorf("ingest: acked %v, delivered %v, lost %v", got["ingest"]["acked"], got["ingest"]["delivered"], got["ingest"]["lost"])
	}
	if num("fanout", "post_errors") != 0 || num("ingest", "post_errors") != 0 {
		t.Errorf("post errors: fanout %v, ingest %v", got["fanout"]["post_errors"], got["ingest"]["post_errors"])
	}
	if num("idle", "sessions") != 20 || num("idle", "rss_after_mib") <= 0 {
		t.Errorf("idle: %v", got["idle"])
	}
	if num("ceiling", "requests") == 0 || num("ratio", "ingest_to_ceiling") <= 0 {
		t.Errorf("ceiling: %v, ratio %v", got["ceiling"], got["ratio"])
	}
}
