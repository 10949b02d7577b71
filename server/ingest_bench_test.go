package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkIngestContactProcessed posts ContactProcessed notifications to
// the ingest handler from 16 goroutines (in process, no sockets): durable
// acknowledgements per second and the allocations of the whole path
// (decode, validate, group commit with projections, answer).
func BenchmarkIngestContactProcessed(b *testing.B) {
	s, _ := benchServer(b)
	h := s.Handler()
	pad := strings.Repeat("x", 100)
	var n atomic.Int64
	b.SetParallelism(8) // 16 posters on 2 CPUs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"GSW_MESSAGE":"ContactProcessed","GSW_MESSAGE_GUID":"G-%d","GSW_TIMESTAMP":"1700000100.250",`+
				`"GSW_CALL_ATTEMPT_GUID":"ATT-%d","GSW_PHONE":"+15551230001","GSW_PHONE_TYPE":1,"GSW_CHAIN_ID":"42","GSW_CHAIN_N":0,`+
				`"GSW_RECORD_HANDLE":17,"GSW_REASON":4,"GSW_CALL_RESULT":33,"GSW_CAMPAIGN_NAME":"Renewals","GSW_CONTACT_MEDIA_TYPE":"voice",`+
				`"GSW_CALLING_LIST":"CL","GSW_CAMPAIGN_GROUP_NAME":"R@S","GSW_CAMPAIGN_GROUP_GUID":"6C3B","GSW_GROUP_NAME":"Sales",`+
				`"GSW_QUEUE_NAME":"7001","GSW_DIAL_MODE":3,"GSW_RECORD_TYPE":2,"GSW_RECORD_STATUS":3,"GSW_START_PROCESSING":"1700000000.000","GSW_DIALING":"1700000001.000",`+
				`"GSW_RINGING":"1700000003.500","GSW_ANSWERED":"1700000010.000","GSW_CPD_COMPLETED":"1700000011.000",`+
				`"GSW_QUEUED":"1700000011.000","GSW_AGENT_RINGING":"1700000014.000","GSW_AGENT_ANSWERED":"1700000016.000",`+
				`"GSW_AGENT_RELEASED":"1700000076.000","GSW_ACW_COMPLETED":"1700000096.000","GSW_AGENT_ID":"1001","pad":%q}`, i, i, pad)
			req := httptest.NewRequest(http.MethodPost, "/ingest/ocs/contact-processed", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = "127.0.0.1:1234"
			req.Host = "127.0.0.1" // the host check answers 421 to example.com
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
