package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// gatedFS holds the write-ahead log's syncs while armed: the first sync
// after arm reports on entered and waits for release.
type gatedFS struct {
	vfs.FS
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedFS) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gatedFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &gatedFile{File: f, g: g}, nil
}

func (g *gatedFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := g.FS.Create(name, c)
	return g.wrap(f, name, err)
}

func (g *gatedFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := g.FS.ReuseForWrite(oldname, newname, c)
	return g.wrap(f, newname, err)
}

// wait holds a sync if the gate is armed (once).
func (g *gatedFS) wait() {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
}

type gatedFile struct {
	vfs.File
	g *gatedFS
}

func (f *gatedFile) Sync() error     { f.g.wait(); return f.File.Sync() }
func (f *gatedFile) SyncData() error { f.g.wait(); return f.File.SyncData() }
func (f *gatedFile) SyncTo(n int64) (bool, error) {
	f.g.wait()
	return f.File.SyncTo(n)
}

// Read returns only acknowledged events: an event whose write-ahead-log
// sync has not finished (Pebble already shows it to readers) is not read,
// since a crash then would lose it and give its seq to another event.
func TestReadShowsOnlySyncedEvents(t *testing.T) {
	g := &gatedFS{FS: vfs.Default, entered: make(chan struct{}), release: make(chan struct{})}
	p := openTestPebble(t, filepath.Join(t.TempDir(), "events"), PebbleConfig{fs: g})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Append(ctx, []Record{prec("a", `{"n":1}`, "k1")}); err != nil {
		t.Fatal(err)
	}
	g.arm()
	done := make(chan error, 1)
	go func() {
		_, err := p.Append(ctx, []Record{prec("a", `{"n":2}`, "k2")})
		done <- err
	}()
	<-g.entered // seq 2 is applied, its sync held
	evs, err := p.Read(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Seq != 1 {
		t.Errorf("read while seq 2 syncs: %d events (last seq %d), want only seq 1", len(evs), lastSeq(evs))
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if evs, err = p.Read(ctx, 0, 10); err != nil || len(evs) != 2 {
		t.Fatalf("read after the sync: %d events, %v; want 2", len(evs), err)
	}
}

func lastSeq(evs []Event) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}
