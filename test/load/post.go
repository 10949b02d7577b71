package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"iproc/test/load/rawhttp"
)

// cpBody builds a seed-001 ContactProcessed body with a unique GUID, an
// agent (may be empty) and the sent time in sentField.
func cpBody(buf []byte, run string, n int64, agent string, sent int64) []byte {
	// The sent time comes first: receivers find it without scanning the
	// frame (the server keeps the notification's field order).
	buf = append(buf, `{"`+sentField+`":"`...)
	buf = strconv.AppendInt(buf, sent, 10)
	buf = append(buf, `","GSW_MESSAGE":"ContactProcessed","GSW_MESSAGE_GUID":"LOAD-`...)
	buf = append(buf, run...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `","GSW_TIMESTAMP":"1700000100.250","GSW_CALL_ATTEMPT_GUID":"ATT-`...)
	buf = append(buf, run...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `","GSW_PHONE":"+15551230001","GSW_PHONE_TYPE":1,"GSW_CHAIN_ID":"42","GSW_CHAIN_N":0,`+
		`"GSW_RECORD_HANDLE":17,"GSW_REASON":4,"GSW_CALL_RESULT":33,"GSW_CAMPAIGN_NAME":"Renewals",`+
		`"GSW_CONTACT_MEDIA_TYPE":"voice","GSW_CALLING_LIST":"CL_Renewals","GSW_CAMPAIGN_GROUP_NAME":"Renewals@Sales",`+
		`"GSW_CAMPAIGN_GROUP_GUID":"6C3B8F7A-1111-4C2B-9C55-0A0B0C0D0E0F","GSW_GROUP_NAME":"Sales","GSW_QUEUE_NAME":"7001",`+
		`"GSW_DIAL_MODE":3,"GSW_RECORD_TYPE":2,"GSW_RECORD_STATUS":3,"GSW_START_PROCESSING":"1700000000.000",`+
		`"GSW_DIALING":"1700000001.000","GSW_RINGING":"1700000003.500","GSW_ANSWERED":"1700000010.000",`+
		`"GSW_CPD_COMPLETED":"1700000011.000","GSW_QUEUED":"1700000011.000","GSW_AGENT_RINGING":"1700000014.000",`+
		`"GSW_AGENT_ANSWERED":"1700000016.000","GSW_AGENT_RELEASED":"1700000076.000","GSW_ACW_COMPLETED":"1700000096.000",`+
		`"Other1":"custom value","CustomerTier":{"level":"gold","score":9.5}`...)
	if agent != "" {
		buf = append(buf, `,"GSW_AGENT_ID":"`...)
		buf = append(buf, agent...)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	return buf
}

// newHTTPClient returns a keep-alive client for conns concurrent posters.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			MaxConnsPerHost:     conns * 2,
			DisableCompression:  true,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// poster posts ContactProcessed notifications, with the raw keep-alive
// client (rawhttp.Client) unless netHTTP is set.
type poster struct {
	client *http.Client
	raw    *rawhttp.Client
	url    string
	run    string
	next   atomic.Int64 // notification number
	acked  atomic.Int64
	errs   atomic.Int64
	lastE  atomic.Pointer[string]
}

// netHTTP makes posters use net/http's client instead of rawhttp.Client (the
// -net-http-client flag, to compare the two).
var netHTTP bool

// cpPath is the endpoint the posters post to.
const cpPath = "/ingest/ocs/contact-processed"

// newPoster returns a poster to base ("http://host:port").
func newPoster(base string, conns int) *poster {
	p := &poster{url: base + cpPath, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	if netHTTP {
		p.client = newHTTPClient(conns)
	} else {
		p.raw = rawhttp.New(strings.TrimPrefix(base, "http://"), cpPath)
	}
	return p
}

// close closes the idle connections.
func (p *poster) close() {
	if p.raw != nil {
		p.raw.CloseIdle()
	} else {
		p.client.CloseIdleConnections()
	}
}

var acceptedTrue = []byte(`"accepted":true`)

// post sends one notification for agent and reports whether it was
// acknowledged (200 accepted) and how long the answer took.
func (p *poster) post(ctx context.Context, buf *[]byte, agent string) (bool, time.Duration) {
	n := p.next.Add(1)
	start := time.Now()
	*buf = cpBody((*buf)[:0], p.run, n, agent, start.UnixNano())
	if p.raw != nil {
		status, body, err := p.raw.Post(ctx, *buf, nil)
		el := time.Since(start)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(err.Error())
			}
			return false, 0
		}
		if status != http.StatusOK || !bytes.Contains(body, acceptedTrue) {
			p.fail(fmt.Sprintf("status %d: %s", status, body))
			return false, el
		}
		p.acked.Add(1)
		return true, el
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(*buf))
	if err != nil {
		p.fail(err.Error())
		return false, 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.fail(err.Error())
		}
		return false, 0
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	el := time.Since(start)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, acceptedTrue) {
		p.fail(fmt.Sprintf("status %d: %s", resp.StatusCode, body))
		return false, el
	}
	p.acked.Add(1)
	return true, el
}

func (p *poster) fail(msg string) {
	p.errs.Add(1)
	p.lastE.Store(&msg)
}

func (p *poster) lastError() string {
	if e := p.lastE.Load(); e != nil {
		return *e
	}
	return ""
}

// flood runs conns posters as fast as they can until the deadline, and
// returns the acknowledgement latencies in microseconds. agent picks the
// agent of notification i ("" for none).
func (p *poster) flood(ctx context.Context, conns int, d time.Duration, agent func(i int64) string) []int32 {
	deadline := time.Now().Add(d)
	lat := make([][]int32, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			var buf []byte
			// In-flight posts finish after the deadline: a post cut short
			// could be committed without being counted as acknowledged.
			for i := int64(w); ctx.Err() == nil && time.Now().Before(deadline); i += int64(conns) {
				if ok, el := p.post(ctx, &buf, agent(i)); ok {
					lat[w] = append(lat[w], int32(el/time.Microsecond))
				}
			}
		})
	}
	wg.Wait()
	var all []int32
	for _, l := range lat {
		all = append(all, l...)
	}
	return all
}
