package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClient starts a throw-away redis-server on a free loopback port
// (skipping when it is not installed and CI is unset) and returns a
// client; both end with the test. The test/ package has the full helper;
// this package needs only this much.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is required in CI: %v", err)
		}
		t.Skip("redis-server not installed; skipping")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		c.Close()
		_ = cmd.Process.Kill()
		<-done
	})
	checkFor(t, 10*time.Second, func() error { return c.Ping(context.Background()).Err() })
	return c
}

// nameCounter is a projector that counts events per name in bucket "n".
type nameCounter struct{}

func (nameCounter) Project(kv KV, ev Event) error {
	var n int
	if v := kv.Get("n", ev.Name); v != nil {
		_ = json.Unmarshal(v, &n)
	}
	b, _ := json.Marshal(n + 1)
	return kv.Put("n", ev.Name, b)
}

func openRedisLog(t *testing.T, c *redis.Client, instance string, rec *recorder) *Redis {
	t.Helper()
	r, err := OpenRedis(RedisConfig{Client: c, Domain: "t", Instance: instance, Projector: nameCounter{}, OnCommit: rec.onCommit, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Two instances append concurrently: seqs rise strictly with no gap, every
// instance's tail sees every event in the same order, a dedup key appended
// on both makes one event, and the projection counts each event once.
func TestRedisTwoInstancesShareOneLog(t *testing.T) {
	c := redisClient(t)
	var recA, recB recorder
	a := openRedisLog(t, c, "A", &recA)
	b := openRedisLog(t, c, "B", &recB)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		for _, l := range []*Redis{a, b} {
			wg.Go(func() {
				for i := range each {
					recs := []Record{rec("x", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), ""), rec("d", `{}`, fmt.Sprintf("k-%d-%d", w, i))}
					if _, err := l.Append(context.Background(), recs); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want := 2*writers*each + writers*each // x on both, d once per key
	for name, rec := range map[string]*recorder{"A": &recA, "B": &recB} {
		checkFor(t, 10*time.Second, func() error {
			if evs, _ := rec.snapshot(); len(evs) != want {
				return fmt.Errorf("%s tail saw %d events, want %d", name, len(evs), want)
			}
			return nil
		})
		evs, _ := rec.snapshot()
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d", name, i, ev.Seq)
			}
			if ev.Meta.Origin != "A" && ev.Meta.Origin != "B" {
				t.Fatalf("origin %q", ev.Meta.Origin)
			}
		}
	}
	read, err := b.Read(context.Background(), 10, 5)
	if err != nil || len(read) != 5 || read[0].Seq != 11 || read[4].Seq != 15 {
		t.Fatalf("Read(10, 5) = %v, %v", read, err)
	}
	res, err := a.Append(context.Background(), []Record{rec("d", `{}`, "k-0-0")})
	if err != nil || !res[0].Duplicate || res[0].Seq == 0 {
		t.Fatalf("dedup across instances: %v %v", res, err)
	}
	err = b.View(func(kv KV) error {
		var x, d int
		_ = json.Unmarshal(kv.Get("n", "x"), &x)
		_ = json.Unmarshal(kv.Get("n", "d"), &d)
		if x != 2*writers*each || d != writers*each {
			return fmt.Errorf("projection x=%d d=%d", x, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if oldest, head := a.Bounds(); oldest != 1 || head != uint64(want) {
		t.Fatalf("bounds %d %d", oldest, head)
	}
	if err := a.Ping(); err != nil {
		t.Fatal(err)
	}
}

// A log reopened finds the head; a failing Redis fails appends with
// ErrUnavailable and Ping says so.
func TestRedisReopenAndUnavailable(t *testing.T) {
	c := redisClient(t)
	var rec1 recorder
	a := openRedisLog(t, c, "A", &rec1)
	mustAppendRedis(t, a, rec("x", `{"i":1}`, ""), rec("x", `{"i":2}`, ""))
	a.Close()
	var rec2 recorder
	a2 := openRedisLog(t, c, "A", &rec2)
	if _, head := a2.Bounds(); head != 2 {
		t.Fatalf("head after reopen = %d", head)
	}
	res := mustAppendRedis(t, a2, rec("x", `{"i":3}`, ""))
	if res[0].Seq != 3 {
		t.Fatalf("seq after reopen = %d", res[0].Seq)
	}
	bad := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer bad.Close()
	if _, err := OpenRedis(RedisConfig{Client: bad, Domain: "t", Instance: "Z"}); err == nil {
		t.Fatal("opened on an unreachable Redis")
	}
}

func mustAppendRedis(t *testing.T, r *Redis, recs ...Record) []Result {
	t.Helper()
	res, err := r.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// indexProjector keeps, in the ordered bucket "idx", one key per event:
// the event's name; an event named "-<key>" deletes <key>.
type indexProjector struct{}

func (indexProjector) Project(kv KV, ev Event) error {
	if k, ok := strings.CutPrefix(ev.Name, "-"); ok {
		return kv.Delete("idx", k)
	}
	return kv.Put("idx", ev.Name, []byte("v-"+ev.Name))
}

func (indexProjector) OrderedBuckets() []string { return []string{"idx"} }

// walk returns the keys and values of "idx" in ForEach order, stopping
// after limit keys (0: all).
func walk(t *testing.T, r *Redis, limit int) []string {
	t.Helper()
	var got []string
	stop := errors.New("stop")
	err := r.View(func(kv KV) error {
		err := kv.ForEach("idx", func(k string, v []byte) error {
			got = append(got, k+"="+string(v))
			if len(got) == limit {
				return stop
			}
			return nil
		})
		if errors.Is(err, stop) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// An ordered bucket is walked in key order from its sorted set, chunk by
// chunk (more keys than a chunk), with deleted keys gone; an index written
// before the sorted set existed is indexed when the log opens.
func TestRedisOrderedBucket(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	// Written by an earlier version: the hash without its sorted set.
	if err := c.HSet(ctx, "iproc:t:kv:idx", "k0500", "old", "k\x00zz", "old0").Err(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRedis(RedisConfig{Client: c, Domain: "t", Instance: "A", Projector: indexProjector{}, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []Record
	for _, i := range rand.Perm(2*orderedChunk + 7) {
		if i != 500 {
			recs = append(recs, Record{Name: fmt.Sprintf("k%04d", i)})
		}
	}
	recs = append(recs, Record{Name: "-k0001"})
	mustAppendRedis(t, r, recs...)
	var want []string
	want = append(want, "k\x00zz=old0", "k0000=v-k0000")
	for i := 2; i < 2*orderedChunk+7; i++ {
		v := fmt.Sprintf("v-k%04d", i)
		if i == 500 {
			v = "old"
		}
		want = append(want, fmt.Sprintf("k%04d=%s", i, v))
	}
	if got := walk(t, r, 0); !slices.Equal(got, want) {
		t.Fatalf("walk: %d keys, first %q, want %d keys, first %q", len(got), got[:min(3, len(got))], len(want), want[:3])
	}
	if got := walk(t, r, 3); !slices.Equal(got, want[:3]) {
		t.Fatalf("walk stopped after 3: %q", got)
	}
	if n := c.ZCard(ctx, "iproc:t:kv:idx#order").Val(); n != int64(len(want)) {
		t.Fatalf("sorted set holds %d keys, want %d", n, len(want))
	}
}

// hashProjector is indexProjector without the ordered bucket: its ForEach
// reads the whole hash.
type hashProjector struct{ indexProjector }

func (hashProjector) OrderedBuckets() []string { return nil }

// BenchmarkRedisIndexWalk walks the first 10 of 50,000 keys of an index, as
// a prune that finds little expired does: from the sorted set (ordered)
// and from the whole hash (hash).
func BenchmarkRedisIndexWalk(b *testing.B) {
	for _, c := range []struct {
		name string
		p    Projector
	}{{"ordered", indexProjector{}}, {"hash", hashProjector{}}} {
		b.Run(c.name, func(b *testing.B) {
			rdb := redisClient(b)
			r, err := OpenRedis(RedisConfig{Client: rdb, Domain: "t", Instance: "A", Projector: c.p, Log: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			recs := make([]Record, 0, 5000)
			for i := range 50000 {
				recs = append(recs, Record{Name: fmt.Sprintf("k%06d", i)})
				if len(recs) == cap(recs) {
					if _, err := r.Append(context.Background(), recs); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
			stop := errors.New("stop")
			b.ResetTimer()
			for b.Loop() {
				n := 0
				err := r.View(func(kv KV) error {
					return kv.ForEach("idx", func(string, []byte) error {
						if n++; n == 10 {
							return stop
						}
						return nil
					})
				})
				if !errors.Is(err, stop) {
					b.Fatal(err)
				}
			}
		})
	}
}
