package server

import (
	"context"
	"errors"
	"maps"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"iproc/protocol"
	"iproc/reporting/sources"
	"iproc/resources/session"
)

// requestTimeout bounds the work of one request (a durable append, a read).
const requestTimeout = 10 * time.Second

// reportHandler serves the report commands that read the store.
type reportHandler interface {
	Handle(ctx context.Context, s *session.Session, req *protocol.Request) (any, error)
}

// router turns one request frame into its response. Its dependencies are
// given explicitly; it does not reach into the Server.
type router struct {
	sessions *session.Registry
	reports  reportHandler
	log      zerolog.Logger
	// requests counts requests by command and result.
	requests *prometheus.CounterVec
	// capabilities is the answer to getCapabilities but for reasonCodes,
	// which come from the directory in force.
	capabilities map[string]any
	// sources answers report.sources.
	sources sourceReporter
}

// sourceReporter reports the health of the notification sources.
type sourceReporter interface {
	Report() []sources.Status
}

// handle runs one request for c and enqueues its response. Bad requests get
// a failure; nothing here closes the connection.
func (rt *router) handle(c *conn, frame []byte) {
	req, perr := protocol.Decode(frame)
	if perr != nil {
		rt.requests.WithLabelValues("", "failure").Inc()
		c.Send(protocol.Marshal(protocol.FailMalformed(&req, perr, frame)))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, send := rt.dispatchSafely(ctx, c, &req)
	rt.requests.WithLabelValues(metricCommand(req.Command), resp.Result).Inc()
	reply := protocol.Marshal(resp)
	if send != nil {
		send(reply)
		return
	}
	c.Send(reply)
}

// dispatchSafely is dispatch with a panic in a handler turned into a
// server.internal failure (logged with its stack), so that one bad request
// neither kills the process nor closes the connection.
func (rt *router) dispatchSafely(ctx context.Context, c *conn, req *protocol.Request) (resp *protocol.Response, send func(reply []byte)) {
	defer func() {
		if v := recover(); v != nil {
			c.logAt(rt.log.Error()).Str("command", req.Command).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("request handler panicked")
			r := protocol.Fail(req, protocol.ErrInternal)
			resp, send = &r, nil
		}
	}()
	return rt.dispatch(ctx, c, req)
}

// dispatch answers req. When send is set, the encoded response goes to it
// rather than straight to the connection: the session registry queues it
// before the events that must follow it (history, a team snapshot).
func (rt *router) dispatch(ctx context.Context, c *conn, req *protocol.Request) (resp *protocol.Response, send func(reply []byte)) {
	fail := func(err error) *protocol.Response {
		r := protocol.Fail(req, rt.toFailure(c, req, err))
		return &r
	}
	ok := func(data any) *protocol.Response {
		r := protocol.Success(req, data)
		return &r
	}
	switch req.Command {
	case protocol.CmdGetCapabilities:
		return ok(rt.capabilitiesNow()), nil
	case protocol.CmdPing:
		return ok(map[string]string{"time": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")}), nil
	case protocol.CmdPrepareSession:
		return rt.prepare(ctx, c, req)
	case protocol.CmdResumeSession:
		return rt.resume(ctx, c, req)
	case protocol.CmdGetState, protocol.CmdSetState, protocol.CmdSubscribe, protocol.CmdUnsubscribe, protocol.CmdCloseSession:
		s := c.session()
		if s == nil {
			return fail(protocol.ErrSessionRequired), nil
		}
		if req.Resource != s.ID {
			return fail(protocol.Errorf(protocol.CodeResourceNotFound, "resource %q is not this connection's session", req.Resource)), nil
		}
		data, err := rt.sessionCommand(ctx, s, req)
		if err != nil {
			return fail(err), nil
		}
		return ok(data), nil
	case protocol.CmdTeamStatusBegin, protocol.CmdTeamStatusEnd:
		s := c.session()
		if s == nil {
			return fail(protocol.ErrSessionRequired), nil
		}
		var d struct {
			AgentID string `json:"agentId"`
		}
		if perr := protocol.DecodeData(req, &d); perr != nil {
			return fail(perr), nil
		}
		if d.AgentID == "" {
			return fail(protocol.Errorf(protocol.CodeInvalid, "data.agentId: required")), nil
		}
		if d.AgentID != s.Agent.ID {
			return fail(protocol.Errorf(protocol.CodeForbidden, "a session may watch only its own agent's teams")), nil
		}
		if req.Command == protocol.CmdTeamStatusEnd {
			if err := rt.sessions.EndTeamStatus(ctx, s); err != nil {
				return fail(err), nil
			}
			return ok(struct{}{}), nil
		}
		return ok(struct{}{}), func(reply []byte) {
			if err := rt.sessions.BeginTeamStatus(ctx, s, reply); err != nil {
				c.logAt(rt.log.Warn()).Err(err).Msg("persist team-status watch")
			}
		}
	case protocol.CmdSources:
		s := c.session()
		if s == nil {
			return fail(protocol.ErrSessionRequired), nil
		}
		if !s.Agent.Type.SeesAllTopics() {
			return fail(protocol.Errorf(protocol.CodeForbidden, "report.sources is for supervisors and team leads")), nil
		}
		return ok(map[string]any{"sources": rt.sources.Report()}), nil
	case protocol.CmdCallJourney, protocol.CmdCampaignGroups:
		s := c.session()
		if s == nil {
			return fail(protocol.ErrSessionRequired), nil
		}
		data, err := rt.reports.Handle(ctx, s, req)
		if err != nil {
			return fail(err), nil
		}
		return ok(data), nil
	}
	return fail(protocol.Errorf(protocol.CodeUnknownCommand, "unknown command %q", req.Command)), nil
}

func (rt *router) prepare(ctx context.Context, c *conn, req *protocol.Request) (*protocol.Response, func([]byte)) {
	if c.session() != nil {
		r := protocol.Fail(req, protocol.ErrSessionExists)
		return &r, nil
	}
	var pr session.PrepareRequest
	if perr := protocol.DecodeData(req, &pr); perr != nil {
		r := protocol.Fail(req, perr)
		return &r, nil
	}
	p, err := rt.sessions.Prepare(ctx, pr, c.remote)
	if err != nil {
		r := protocol.Fail(req, rt.toFailure(c, req, err))
		return &r, nil
	}
	if p.Session == nil {
		r := protocol.Confirm(req, p.Confirm)
		return &r, nil
	}
	c.sess.Store(p.Session)
	c.logAt(rt.log.Info()).Msg("session prepared")
	r := protocol.SuccessResource(req, map[string]any{
		"id":          p.Session.ID,
		"type":        protocol.ResourceTypeSession,
		"resumeToken": p.ResumeToken,
		"data":        protocol.MaskPasswords(req.Data),
	})
	return &r, func(reply []byte) { rt.sessions.Attach(c.ctx, p.Session, c, p.From, reply) }
}

func (rt *router) resume(ctx context.Context, c *conn, req *protocol.Request) (*protocol.Response, func([]byte)) {
	if c.session() != nil {
		r := protocol.Fail(req, protocol.ErrSessionExists)
		return &r, nil
	}
	var rr session.ResumeRequest
	if perr := protocol.DecodeData(req, &rr); perr != nil {
		r := protocol.Fail(req, perr)
		return &r, nil
	}
	s, res, err := rt.sessions.Resume(ctx, rr)
	if err != nil {
		r := protocol.Fail(req, rt.toFailure(c, req, err))
		return &r, nil
	}
	c.sess.Store(s)
	c.logAt(rt.log.Info()).Bool("recovered", res.Recovered).Uint64("since", rr.Since).Msg("session resumed")
	r := protocol.Success(req, res)
	return &r, func(reply []byte) { c.replay(func() { rt.sessions.Attach(c.ctx, s, c, rr.Since, reply) }) }
}

func (rt *router) sessionCommand(ctx context.Context, s *session.Session, req *protocol.Request) (any, error) {
	switch req.Command {
	case protocol.CmdGetState:
		return rt.sessions.GetState(s)
	case protocol.CmdSetState:
		var d session.SetStateRequest
		if perr := protocol.DecodeData(req, &d); perr != nil {
			return nil, perr
		}
		return struct{}{}, rt.sessions.SetState(ctx, s, d)
	case protocol.CmdSubscribe, protocol.CmdUnsubscribe:
		var d session.SubscribeRequest
		if perr := protocol.DecodeData(req, &d); perr != nil {
			return nil, perr
		}
		if req.Command == protocol.CmdSubscribe {
			return map[string]any{"topics": d.Topics}, rt.sessions.Subscribe(ctx, s, d)
		}
		return map[string]any{"topics": d.Topics}, rt.sessions.Unsubscribe(ctx, s, d)
	default: // closeSession
		return struct{}{}, rt.sessions.Close(ctx, s)
	}
}

// toFailure maps err to the failure the client sees: protocol errors as
// they are, anything else logged and reported as server.internal.
func (rt *router) toFailure(c *conn, req *protocol.Request, err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.Code == protocol.CodeUnavailable {
			c.logAt(rt.log.Warn()).Err(err).Str("command", req.Command).Msg("request failed: store unavailable")
		}
		return pe
	}
	c.logAt(rt.log.Error()).Err(err).Str("command", req.Command).Msg("request failed")
	return protocol.ErrInternal
}

// metricCommand bounds the label values of the requests metric to known
// commands.
func metricCommand(cmd string) string {
	switch cmd {
	case protocol.CmdGetCapabilities, protocol.CmdPing, protocol.CmdPrepareSession, protocol.CmdResumeSession,
		protocol.CmdGetState, protocol.CmdSetState, protocol.CmdSubscribe, protocol.CmdUnsubscribe,
		protocol.CmdCloseSession, protocol.CmdCallJourney, protocol.CmdTeamStatusBegin,
		protocol.CmdTeamStatusEnd, protocol.CmdCampaignGroups, protocol.CmdSources:
		return cmd
	}
	return "other"
}

// capabilitiesNow is the answer to getCapabilities: the server's, with the
// reason-code labels of the directory in force.
func (rt *router) capabilitiesNow() map[string]any {
	out := maps.Clone(rt.capabilities)
	reasons := rt.sessions.Directory().ReasonCodes()
	if reasons == nil {
		reasons = map[string]string{}
	}
	out["reasonCodes"] = reasons
	return out
}
