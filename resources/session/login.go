package session

import (
	"context"
	"errors"

	"iproc/protocol"
	"iproc/reporting/directory"
)

// Logins are a password checked against the directory, or, with single
// sign-on, an OpenID Connect ID token checked by Config.VerifyToken; either
// way the agent must be in the directory, whose entry gives its rights.

// Refusals of a kind of login the server does not take (not counted as
// failed attempts: they reveal nothing about any agent).
var (
	errPasswordLoginOff = &protocol.Error{Code: protocol.CodeInvalidCredentials,
		Message: "password logins are turned off on this server: log in with an ID token from your identity provider (agent: {id, token})"}
	errNoSingleSignOn = &protocol.Error{Code: protocol.CodeInvalidCredentials,
		Message: "this server does not take ID tokens (no identity provider configured): log in with a password"}
)

// credentialProblems returns what is wrong with the shape of req's
// credentials (request.invalid messages): a password or a token, not both.
func (r *Registry) credentialProblems(req PrepareRequest) []string {
	a := req.Agent
	switch {
	case a.Password != "" && a.Token != "":
		return []string{"data.agent: give password or token, not both"}
	case a.Password != "" || a.Token != "":
		return nil
	case r.verifyToken == nil:
		return []string{"data.agent.password: required"}
	case r.noPassword:
		return []string{"data.agent.token: required (an ID token from the identity provider)"}
	}
	return []string{"data.agent.password or data.agent.token: required"}
}

// loginAllowed refuses a kind of login this server does not take.
func (r *Registry) loginAllowed(req PrepareRequest) error {
	if req.Agent.Token != "" && r.verifyToken == nil {
		return errNoSingleSignOn
	}
	if req.Agent.Password != "" && r.noPassword {
		return errPasswordLoginOff
	}
	return nil
}

// authenticate checks req's password or token and returns the agent.
func (r *Registry) authenticate(ctx context.Context, req PrepareRequest) (directory.Agent, error) {
	if req.Agent.Token == "" {
		agent, ok := r.Directory().Authenticate(req.Agent.ID, req.Agent.Password)
		if !ok {
			return directory.Agent{}, protocol.ErrInvalidCredentials
		}
		return agent, nil
	}
	if err := r.verifyToken(ctx, req.Agent.ID, req.Agent.Token); err != nil {
		return directory.Agent{}, err
	}
	agent, ok := r.Directory().Agent(req.Agent.ID)
	if !ok {
		return directory.Agent{}, protocol.ErrInvalidToken
	}
	return agent, nil
}

// isFailedAttempt reports whether err is a wrong credential, counted by the
// failed-login limits (an unreachable identity provider is not).
func isFailedAttempt(err error) bool {
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Code == protocol.CodeInvalidCredentials
}
