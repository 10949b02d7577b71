package test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server on a free 127.0.0.1 port, run for one
// test and stopped when it ends.
type redisServer struct {
	t        testing.TB
	addr     string
	URL      string // redis://127.0.0.1:port/0
	dir      string
	aof      bool
	password string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *bytes.Buffer
}

// redisOptions choose how a test Redis runs.
type redisOptions struct {
	// Durable turns on the append-only file with fsync on every write, in a
	// temp folder, so that a Restart keeps the data.
	Durable bool
	// Password, when set, is required from clients (requirepass); URL
	// carries it.
	Password string
}

// startRedis starts redis-server. It skips the test when redis-server is
// not installed and CI is unset, and fails it when CI is set.
func startRedis(t testing.TB, opts redisOptions) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is required in CI (test/run.sh installs it): %v", err)
		}
		t.Skip("redis-server not installed (apt-get install redis-server, or run test/run.sh); skipping")
	}
	r := &redisServer{t: t, addr: freePort(t), dir: t.TempDir(), aof: opts.Durable, password: opts.Password}
	r.URL = "redis://" + r.addr + "/0"
	if r.password != "" {
		r.URL = "redis://:" + r.password + "@" + r.addr + "/0"
	}
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", r.dir, "--save", "", "--protected-mode", "yes", "--loglevel", "warning"}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	if r.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: logs}, &lockedWriter{w: logs}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done, r.logs = cmd, done, logs
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: r.addr, Password: r.password, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			r.t.Fatalf("redis-server exited at start-up: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server not answering on %s: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills redis-server and waits for it to exit. Stopping a stopped
// server does nothing.
func (r *redisServer) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops redis-server and starts it again on the same port (with
// its data when Durable).
func (r *redisServer) Restart() {
	r.t.Helper()
	r.Stop()
	r.start()
}

// Client returns a go-redis client for the server, closed at the end of
// the test.
func (r *redisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr, Password: r.password})
	r.t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisHelperRestartKeepsDurableData(t *testing.T) {
	r := startRedis(t, redisOptions{Durable: true})
	c := r.Client()
	ctx := context.Background()
	for i := range 10 {
		if err := c.LPush(ctx, "k", fmt.Sprint(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.Restart()
	n, err := c.LLen(ctx, "k").Result()
	if err != nil || n != 10 {
		t.Fatalf("after restart LLEN = %d, %v", n, err)
	}
	if !strings.HasPrefix(r.URL, "redis://127.0.0.1:") {
		t.Fatalf("URL = %s", r.URL)
	}
}
