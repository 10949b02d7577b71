package protocol

import "fmt"

// Failure codes (stable; SPEC §3.1).
const (
	CodeMalformed          = "request.malformed"
	CodeUnknownCommand     = "request.unknownCommand"
	CodeInvalid            = "request.invalid"
	CodeSessionRequired    = "session.required"
	CodeSessionExists      = "session.exists"
	CodeInvalidCredentials = "session.invalidCredentials"
	CodeUnknownModel       = "session.unknownModel"
	CodeNotResumable       = "session.notResumable"
	CodeResourceNotFound   = "resource.notFound"
	CodeForbidden          = "auth.forbidden"
	CodeReportNotFound     = "report.notFound"
	CodeRateLimited        = "rate.limited"
	CodeUnavailable        = "server.unavailable"
	CodeInternal           = "server.internal"
)

// Codes lists every failure code, for documents and tests.
func Codes() []string {
	return []string{CodeMalformed, CodeUnknownCommand, CodeInvalid, CodeSessionRequired,
		CodeSessionExists, CodeInvalidCredentials, CodeUnknownModel, CodeNotResumable,
		CodeResourceNotFound, CodeForbidden, CodeReportNotFound, CodeRateLimited,
		CodeUnavailable, CodeInternal}
}

// Error is a failure the client is told about: it becomes the failure of a
// response envelope and the connection carries on.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Context string `json:"context"`
}

var _ error = (*Error)(nil)

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf makes an Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinel failures.
var (
	ErrSessionRequired    = &Error{Code: CodeSessionRequired, Message: "this command needs a session: send prepareSession first"}
	ErrSessionExists      = &Error{Code: CodeSessionExists, Message: "this connection already has a session"}
	ErrInvalidCredentials = &Error{Code: CodeInvalidCredentials, Message: "unknown agent or wrong password"}
	ErrInvalidToken       = &Error{Code: CodeInvalidCredentials, Message: "unknown agent or invalid token"}
	ErrNotResumable       = &Error{Code: CodeNotResumable, Message: "no resumable session with that id and token"}
	ErrResourceNotFound   = &Error{Code: CodeResourceNotFound, Message: "no such resource on this connection"}
	ErrForbidden          = &Error{Code: CodeForbidden, Message: "not allowed for this agent"}
	ErrReportNotFound     = &Error{Code: CodeReportNotFound, Message: "nothing known for that id"}
	ErrRateLimited        = &Error{Code: CodeRateLimited, Message: "too many failed attempts: wait and try again"}
	ErrUnavailable        = &Error{Code: CodeUnavailable, Message: "the server cannot do this right now: try again"}
	ErrInternal           = &Error{Code: CodeInternal, Message: "internal error"}
)
