package test

import (
	"context"
	"testing"
	"time"

	"iproc/server"
)

// TestHistoryPrunesJourneysAndDedupKeys: with --history 1s, a journey and
// the dedup key of the notification that made it are gone once pruned: the
// journey is report.notFound and the same GSW_MESSAGE_GUID is accepted as
// new (a new seq, not duplicate). The same holds with the embedded log and
// with the Redis log.
func TestHistoryPrunesJourneysAndDedupKeys(t *testing.T) {
	t.Run("embedded log", func(t *testing.T) {
		testHistoryPrunes(t, startServer(t, func(c *server.Config) { c.History = time.Second }))
	})
	t.Run("Redis log", func(t *testing.T) {
		r := startRedis(t, redisOptions{})
		testHistoryPrunes(t, startServer(t, func(c *server.Config) { c.History, c.RedisURL = time.Second, r.URL }))
		// The journeys' update-time index is a sorted set too, so that
		// pruning reads only what expires: it indexes the live journey.
		if n := r.Client().ZCard(context.Background(), "iproc:default:kv:updated#order").Val(); n == 0 {
			t.Fatal("the journeys' update-time index has no sorted set")
		}
	})
}

func testHistoryPrunes(t *testing.T, ts *testServer) {
	const guid, attempt = "RET-MSG-1", "RET-ATT-1"
	status, first := post(t, ts.URL+pathCP, jsonOf(contactProcessed(guid, attempt, "1001")), nil)
	if status != 200 {
		t.Fatalf("post: %d %v", status, first)
	}
	sup := dial(t, ts.WS)
	sup.login("2001")
	if lines := journeyLines(t, sup.request("report.calljourney", map[string]any{"CallId": attempt}, "")); len(lines) == 0 {
		t.Fatal("no journey right after the post")
	}
	checkFor(t, 15*time.Second, "the journey pruned", func() bool {
		resp := sup.request("report.calljourney", map[string]any{"CallId": attempt}, "")
		f, _ := resp["failure"].(map[string]any)
		return f != nil && f["code"] == "report.notFound"
	})
	status, again := post(t, ts.URL+pathCP, jsonOf(contactProcessed(guid, attempt, "1001")), nil)
	if status != 200 || again["duplicate"] == true || seqOf(t, again) <= seqOf(t, first) {
		t.Fatalf("after pruning, the same GUID: %d %v (first %v)", status, again, first)
	}
}
