// Package rawhttp is a cheap HTTP/1.1 client for load and crash tests: it
// posts over keep-alive connections with nothing but a buffered reader per
// connection, so the client costs less CPU per request than the server it
// measures.
package rawhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Client posts over keep-alive HTTP/1.1 connections with nothing but a
// buffered reader per connection: one write per request (head and body
// together), the status line and the few headers it needs parsed by hand.
// net/http's client spends more CPU per request than a no-op server does
// (a transport goroutine pair per connection, header maps, a context
// watcher per request), so with it the ceiling scenario measured the client
// as much as the server; this client is what keeps the ceiling and the
// ingest ratio about the server.
type Client struct {
	addr string
	head []byte // the request up to the Content-Length value

	mu   sync.Mutex
	idle []*rawConn
}

type rawConn struct {
	c   net.Conn
	r   *bufio.Reader
	out []byte
}

// New returns a client that posts JSON to path on addr (host:port).
func New(addr, path string) *Client {
	return &Client{addr: addr, head: []byte("POST " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nContent-Type: application/json\r\nContent-Length: ")}
}

func (c *Client) get() (*rawConn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rc, nil
	}
	c.mu.Unlock()
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: conn, r: bufio.NewReaderSize(conn, 4096)}, nil
}

func (c *Client) put(rc *rawConn) {
	c.mu.Lock()
	c.idle = append(c.idle, rc)
	c.mu.Unlock()
}

// CloseIdle closes the idle connections.
func (c *Client) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, rc := range idle {
		_ = rc.c.Close()
	}
}

// Post sends body and returns the status and up to 4 KiB of the answer's
// body (appended to into). A connection that fails or that the server
// closes is dropped; the next post dials a new one.
func (c *Client) Post(ctx context.Context, body, into []byte) (int, []byte, error) {
	rc, err := c.get()
	if err != nil {
		return 0, into, err
	}
	// A cancelled context ends a post in flight at once.
	stop := context.AfterFunc(ctx, func() { _ = rc.c.SetDeadline(time.Unix(1, 0)) })
	_ = rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	status, into, keep, err := rc.roundTrip(c.head, body, into)
	if !stop() {
		keep = false
	}
	if err != nil || !keep {
		_ = rc.c.Close()
	} else {
		c.put(rc)
	}
	return status, into, err
}

var errBadResponse = errors.New("malformed HTTP response")

func (rc *rawConn) roundTrip(head, body, into []byte) (status int, _ []byte, keep bool, err error) {
	rc.out = append(rc.out[:0], head...)
	rc.out = strconv.AppendInt(rc.out, int64(len(body)), 10)
	rc.out = append(rc.out, "\r\n\r\n"...)
	rc.out = append(rc.out, body...)
	if _, err := rc.c.Write(rc.out); err != nil {
		return 0, into, false, err
	}
	line, err := rc.line()
	if err != nil {
		return 0, into, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, into, false, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, into, false, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err := rc.line()
		if err != nil {
			return status, into, false, err
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, into, false, fmt.Errorf("%w: header %q", errBadResponse, line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return status, into, false, fmt.Errorf("%w: %q", errBadResponse, line)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			keep = !bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			line, err := rc.line()
			if err != nil {
				return status, into, false, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
			if err != nil || size < 0 {
				return status, into, false, fmt.Errorf("%w: chunk size %q", errBadResponse, line)
			}
			if size == 0 {
				if _, err := rc.line(); err != nil { // the empty trailer
					return status, into, false, err
				}
				return status, into, keep, nil
			}
			if into, err = rc.body(into, int(size)); err != nil {
				return status, into, false, err
			}
			if _, err := rc.line(); err != nil {
				return status, into, false, err
			}
		}
	case length >= 0:
		into, err = rc.body(into, length)
		return status, into, keep && err == nil, err
	default: // the body runs to the end of the connection
		into, err = rc.body(into, 1<<20)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		return status, into, false, err
	}
}

// line reads one header line without its CRLF; the slice is valid until the
// next read.
func (rc *rawConn) line() ([]byte, error) {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line too long", errBadResponse)
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// body reads n bytes, keeping the first 4 KiB of them in into.
func (rc *rawConn) body(into []byte, n int) ([]byte, error) {
	for n > 0 {
		b, err := rc.r.Peek(min(n, rc.r.Size()))
		if len(b) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return into, err
		}
		if room := 4096 - len(into); room > 0 {
			into = append(into, b[:min(room, len(b))]...)
		}
		_, _ = rc.r.Discard(len(b))
		n -= len(b)
	}
	return into, nil
}
