package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestKV(t *testing.T) {
	b := open(t, BoltConfig{Projector: projectorFunc(func(kv KV, ev Event) error {
		if v := kv.Get("missing", "k"); v != nil {
			return fmt.Errorf("Get on missing bucket = %q", v)
		}
		if err := kv.Delete("missing", "k"); err != nil {
			return err
		}
		for _, k := range []string{"b", "a", "c"} {
			if err := kv.Put("s", k, []byte(ev.Name+k)); err != nil {
				return err
			}
		}
		return kv.Delete("s", "c")
	})})
	mustAppend(t, b, rec("e", `{}`, ""))

	var keys []string
	err := b.View(func(kv KV) error {
		if err := kv.Put("s", "z", nil); err == nil {
			return errors.New("Put in a view succeeded")
		}
		return kv.ForEach("s", func(k string, v []byte) error {
			keys = append(keys, k+"="+string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if got := strings.Join(keys, ","); got != "a=ea,b=eb" {
		t.Errorf("ForEach = %s, want a=ea,b=eb", got)
	}
	stop := errors.New("stop")
	err = b.View(func(kv KV) error {
		if err := kv.ForEach("nope", func(string, []byte) error { return stop }); err != nil {
			return err
		}
		return kv.ForEach("s", func(string, []byte) error { return stop })
	})
	if !errors.Is(err, stop) {
		t.Errorf("ForEach stop = %v", err)
	}
	// The projection buckets do not clash with the log's own.
	err = b.View(func(kv KV) error {
		if v := kv.Get("events", string(seqKey(1))); v != nil {
			return errors.New("projection namespace reaches the events bucket")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

type projectorFunc func(kv KV, ev Event) error

func (f projectorFunc) Project(kv KV, ev Event) error { return f(kv, ev) }

func TestCodec(t *testing.T) {
	ev := Event{Time: time.Unix(0, 42).UTC(), Name: "n", Data: json.RawMessage(`{"a":1}`), Meta: Meta{Ext: "5"}}
	v, data := encodeEvent(&ev, "key")
	if string(data) != `{"a":1}` {
		t.Errorf("data slice = %q", data)
	}
	got, err := decodeEvent(7, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 7 || got.Name != "n" || got.Meta != ev.Meta || !got.Time.Equal(ev.Time) || string(got.Data) != `{"a":1}` {
		t.Errorf("decoded %+v", got)
	}
	_, f, _, _ := decodeHeader(v)
	if string(f[4]) != "key" {
		t.Errorf("dedup key = %q", f[4])
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 0, 0, 0, 0, 0}, v[:10], {1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff}} {
		if _, err := decodeEvent(1, bad); err == nil {
			t.Errorf("decodeEvent(%x) succeeded", bad)
		}
	}
}
