package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// loadPassword is the password of every user of the generated directory.
const loadPassword = "load-pass"

// Users of the generated directory: agents a000001…, supervisors s000001….
func agentID(i int) string      { return fmt.Sprintf("a%06d", i+1) }
func supervisorID(i int) string { return fmt.Sprintf("s%06d", i+1) }

// teamSize is the number of agents per team of the generated directory.
const teamSize = 50

// teamCount is how many teams the first n agents fill.
func teamCount(agents int) int { return (agents + teamSize - 1) / teamSize }

// writeDirectory writes a directory (SPEC §7.1) with agents and supervisors,
// hashed at bcrypt cost 4 so that thousands of logins take seconds. Agents
// are in teams of 50; supervisor j supervises team j mod teams.
func writeDirectory(path string, agents, supervisors int) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(loadPassword), 4)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	type agent struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Type         string `json:"type"`
		Extension    string `json:"extension,omitempty"`
		PasswordHash string `json:"passwordHash"`
	}
	type team struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Members     []string `json:"members"`
		Supervisors []string `json:"supervisors"`
	}
	var doc struct {
		Agents []agent `json:"agents"`
		Teams  []team  `json:"teams"`
	}
	for i := range agents {
		doc.Agents = append(doc.Agents, agent{agentID(i), "Agent " + agentID(i), "Agent", strconv.Itoa(500000 + i), string(hash)})
	}
	for i := range supervisors {
		doc.Agents = append(doc.Agents, agent{supervisorID(i), "Supervisor " + supervisorID(i), "Supervisor", "", string(hash)})
	}
	teams := teamCount(agents)
	for t := range teams {
		tm := team{ID: fmt.Sprintf("t%04d", t+1), Name: fmt.Sprintf("Team %d", t+1), Members: []string{}, Supervisors: []string{}}
		for i := t * teamSize; i < min(agents, (t+1)*teamSize); i++ {
			tm.Members = append(tm.Members, agentID(i))
		}
		doc.Teams = append(doc.Teams, tm)
	}
	for j := range supervisors {
		if teams > 0 {
			doc.Teams[j%teams].Supervisors = append(doc.Teams[j%teams].Supervisors, supervisorID(j))
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// target is the server under load: a child process the tool started, or an
// address given with -addr (then pid may be 0 and server figures are absent).
type target struct {
	addr  string
	pid   int
	cmd   *exec.Cmd
	dir   string // temp folder (binary, data, directory) when we started it
	logs  *lockedBuffer
	ownFS bool
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildServer builds ./cmd/iproc into dir and returns the binary's path.
func buildServer(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, "iproc")
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// startTarget builds and starts iproc on a free loopback port with a fresh
// data folder and a generated directory, and waits for /readyz.
func startTarget(ctx context.Context, cfg *config) (*target, error) {
	dir, err := os.MkdirTemp("", "iproc-load-")
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, logs: &lockedBuffer{}, ownFS: true}
	bin := cfg.binary
	if bin == "" {
		if bin, err = buildServer(dir, cfg.pkg); err != nil {
			t.stop()
			return nil, err
		}
	}
	dirFile := filepath.Join(dir, "directory.json")
	if err := writeDirectory(dirFile, cfg.agents(), cfg.supervisors()); err != nil {
		t.stop()
		return nil, err
	}
	if t.addr, err = freeAddr(); err != nil {
		t.stop()
		return nil, err
	}
	args := []string{"serve", "--listen", t.addr, "--data", filepath.Join(dir, "data"),
		"--directory", dirFile, "--log-level", "warn", "--log-format", "json"}
	if cfg.pprofAddr != "" {
		args = append(args, "--pprof", cfg.pprofAddr)
	}
	t.cmd = exec.Command(bin, args...)
	t.cmd.Env = append(os.Environ(), cfg.serverEnv...)
	t.cmd.Stdout, t.cmd.Stderr = t.logs, t.logs
	if err := t.cmd.Start(); err != nil {
		t.stop()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	t.pid = t.cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ctx.Err() != nil || time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("server not ready at %s: %s", t.addr, t.logs.String())
		}
		resp, err := http.Get("http://" + t.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the child process (SIGTERM, then SIGKILL after 10 s) and removes
// the temp folder.
func (t *target) stop() {
	if t.cmd != nil && t.cmd.Process != nil {
		_ = t.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = t.cmd.Process.Kill()
			<-done
		}
	}
	if t.ownFS && t.dir != "" {
		_ = os.RemoveAll(t.dir)
	}
}

// procStat is a process's CPU time and resident memory.
type procStat struct {
	cpu time.Duration // user + system
	rss int64         // bytes
}

// clockTick is the kernel's USER_HZ, 100 on Linux.
const clockTick = 100

// readProc reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status
// (VmRSS).
func readProc(pid int) (procStat, error) {
	var ps procStat
	if pid <= 0 {
		return ps, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the ")" that closes comm; utime and stime are fields 14
	// and 15 of the whole line, so 12 and 13 after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ps, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return ps, errors.New("bad stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	ps.cpu = time.Duration(ut+st) * time.Second / clockTick
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			ps.rss = kb << 10
		}
	}
	return ps, nil
}

// selfCPU returns this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNoFile raises RLIMIT_NOFILE to the hard limit and returns the new
// soft limit.
func raiseNoFile() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// meter measures a phase: wall time, client CPU, server CPU.
type meter struct {
	pid    int
	start  time.Time
	client time.Duration
	server procStat
}

func startMeter(pid int) *meter {
	m := &meter{pid: pid, start: time.Now(), client: selfCPU()}
	m.server, _ = readProc(pid)
	return m
}

// cpuFigures are CPU use over a phase, in cores (1.0 = one core busy).
type cpuFigures struct {
	Seconds      float64 `json:"seconds"`
	ClientCores  float64 `json:"client_cpu_cores"`
	ServerCores  float64 `json:"server_cpu_cores,omitempty"`
	ServerRSSMiB float64 `json:"server_rss_mib,omitempty"`
}

func (m *meter) stop() cpuFigures {
	el := time.Since(m.start)
	f := cpuFigures{Seconds: round(el.Seconds(), 3), ClientCores: round(float64(selfCPU()-m.client)/float64(el), 3)}
	if ps, err := readProc(m.pid); err == nil {
		f.ServerCores = round(float64(ps.cpu-m.server.cpu)/float64(el), 3)
		f.ServerRSSMiB = round(float64(ps.rss)/(1<<20), 1)
	}
	return f
}

// isLoopbackAddr reports whether host:port names a loopback host.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// signalNotify relays SIGINT and SIGTERM to ch.
func signalNotify(ch chan os.Signal) { signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM) }

// lockedBuffer is a bytes.Buffer safe for the child's output copier and a
// concurrent reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
