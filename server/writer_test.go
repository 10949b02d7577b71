package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

// The writer's invariants (writer.go) tested on in-memory connections
// under testing/synctest: time is a fake clock, so deadlines, pings and
// the linger pass at once, and synctest.Wait waits for every goroutine of
// the test to block.

// owner records what the writer told its connection.
type owner struct {
	failed   atomic.Int64
	finished atomic.Int64
}

func (o *owner) writeFailed(error) { o.failed.Add(1) }
func (o *owner) writerFinished()   { o.finished.Add(1) }

// countingConn counts the Writes to a net.Conn; past maxWrites it fails
// them (not as a timeout), so that a writer that spins ends and the test
// can fail instead of hanging.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

const maxWrites = 1000

func (c *countingConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) > maxWrites {
		return 0, errors.New("spinning")
	}
	return c.Conn.Write(p)
}

func testWriterConfig() *writerConfig {
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}
	return &writerConfig{MaxFrames: 8, MaxBytes: 1000, WriteWait: 10 * time.Second, PingPeriod: 30 * time.Second, Bufs: pool}
}

// readFrame reads one server frame (unmasked) from r: opcode and payload.
func readFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			t.Fatal(err)
		}
		n = int(l[0])<<8 | int(l[1])
	case 127:
		t.Fatal("frame too large for the test")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0f, p
}

// Invariant 2: frames queued while the writer writes go out together,
// with one Write, in order.
func TestWriterBatchesFramesQueuedWhileWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, peer := net.Pipe()
		defer peer.Close()
		cc := &countingConn{Conn: local}
		var w writer
		o := &owner{}
		w.init(cc, testWriterConfig(), o)
		w.push([]byte("one")) // the writer starts and blocks in Write: peer reads nothing yet
		synctest.Wait()
		w.push([]byte("two"))
		w.push([]byte("three"))
		for _, want := range []string{"one", "two", "three"} {
			if op, p := readFrame(t, peer); op != opText || string(p) != want {
				t.Fatalf("frame %d %q, want text %q", op, p, want)
			}
		}
		synctest.Wait()
		if n := cc.writes.Load(); n != 2 {
			t.Errorf("%d writes for one frame then two queued together, want 2", n)
		}
		w.close(websocket.CloseNormalClosure, "")
		if op, _ := readFrame(t, peer); op != websocket.CloseMessage {
			t.Errorf("after close: opcode %d, want close", op)
		}
		w.wait()
		if o.finished.Load() != 1 || o.failed.Load() != 0 {
			t.Errorf("finished %d, failed %d; want 1, 0", o.finished.Load(), o.failed.Load())
		}
	})
}

// Invariant 3: the unwritten frames are bounded in bytes and in frames; a
// frame larger than the byte bound is taken into an empty queue only.
func TestWriterBoundsFramesAndBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, peer := net.Pipe()
		defer peer.Close()
		var w writer
		w.init(local, testWriterConfig(), &owner{})
		defer func() { w.close(websocket.CloseAbnormalClosure, ""); local.Close(); w.wait() }()
		f300 := bytes.Repeat([]byte("x"), 300)
		for i := range 3 { // 900 bytes: the first being written, two queued
			if !w.push(f300) {
				t.Fatalf("frame %d of 300 bytes refused under a bound of 1000", i+1)
			}
		}
		if w.push(f300) {
			t.Fatal("a fourth 300-byte frame passed the 1000-byte bound")
		}
		for range 5 { // small frames up to 8 in all
			if !w.push([]byte("s")) {
				t.Fatal("a small frame refused under the frame bound")
			}
		}
		if w.push([]byte("s")) {
			t.Fatal("a ninth frame passed the bound of 8")
		}
		// The peer reads: room again.
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		synctest.Wait()
		if !w.push(bytes.Repeat([]byte("L"), 5000)) {
			t.Error("a frame larger than the byte bound refused by an empty queue")
		}
		if w.push([]byte("s")) {
			t.Error("a frame queued behind one larger than the byte bound")
		}
	})
}

// selfSigned returns a throwaway TLS certificate.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Invariant 4, issue 13: a TLS peer that stops reading. The write times out
// after WriteWait, the tls.Conn is then broken (every later Write fails at
// once), and the writer must end the connection there: no retry, no close
// frame, no spinning, and nothing more is queued.
func TestWriterTLSSlowConsumerEndsWithoutSpinning(t *testing.T) {
	cert := selfSigned(t)
	synctest.Test(t, func(t *testing.T) {
		raw, peerRaw := net.Pipe()
		server := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		client := tls.Client(peerRaw, &tls.Config{InsecureSkipVerify: true})
		defer client.Close()
		go func() { _ = client.Handshake() }()
		if err := server.Handshake(); err != nil {
			t.Fatal(err)
		}
		cc := &countingConn{Conn: server}
		cfg := testWriterConfig()
		var w writer
		o := &owner{}
		w.init(cc, cfg, o)
		start := time.Now()
		w.push(bytes.Repeat([]byte("e"), 500)) // the client never reads it
		synctest.Wait()                        // the writer is in Write
		w.close(websocket.CloseTryAgainLater, "slow consumer")
		w.wait()
		if took := time.Since(start); took > cfg.WriteWait+closeWriteWait {
			t.Errorf("the writer ended after %s, want within the write deadline %s", took, cfg.WriteWait)
		}
		time.Sleep(10 * cfg.PingPeriod) // pings would be due; nothing may be written
		synctest.Wait()
		if n := cc.writes.Load(); n != 1 {
			t.Errorf("%d writes to the TLS connection, want 1 (the frame that timed out)", n)
		}
		if o.failed.Load() != 1 || o.finished.Load() != 1 {
			t.Errorf("failed %d, finished %d; want 1, 1", o.failed.Load(), o.finished.Load())
		}
		if w.push([]byte("more")) {
			t.Error("a frame was queued after the connection failed")
		}
		server.Close()
	})
}

// Invariants 1 and 5: pings are written on their timer by a writer that
// starts for them; with nothing to write the writer ends after lingering;
// the close frame comes after the frames being written and ends the writer.
func TestWriterPingsLingersAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, peer := net.Pipe()
		defer peer.Close()
		var w writer
		o := &owner{}
		cfg := testWriterConfig()
		w.init(local, cfg, o)
		running := func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.running }
		time.Sleep(cfg.PingPeriod)
		if op, _ := readFrame(t, peer); op != websocket.PingMessage {
			t.Fatalf("opcode %d on the ping timer, want ping", op)
		}
		time.Sleep(writerLinger / 2)
		if !running() {
			t.Error("the writer did not linger")
		}
		time.Sleep(writerLinger)
		synctest.Wait()
		if running() {
			t.Error("an idle writer kept its goroutine past the linger")
		}
		_ = w.pongDue("hi")
		if op, p := readFrame(t, peer); op != websocket.PongMessage || string(p) != "hi" {
			t.Fatalf("opcode %d %q for the peer's ping, want pong \"hi\"", op, p)
		}
		w.push([]byte("last"))
		synctest.Wait() // the writer is in Write: the close comes after this frame
		w.close(websocket.CloseGoingAway, "bye")
		if op, p := readFrame(t, peer); op != opText || string(p) != "last" {
			t.Fatalf("opcode %d %q, want the queued frame before the close", op, p)
		}
		op, p := readFrame(t, peer)
		if op != websocket.CloseMessage || !bytes.Equal(p, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye")) {
			t.Fatalf("opcode %d %q, want close 1001", op, p)
		}
		w.wait()
		if o.finished.Load() != 1 || w.push([]byte("x")) {
			t.Error("the writer accepted a frame after the close")
		}
	})
}
