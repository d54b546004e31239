package hotplex

/*
#include <stdint.h>
#include "hotplex.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
)

// Status is a hotplex_status code of the C ABI.
type Status int

// The status codes of the C ABI: hotplex's error codes (the schema's
// x-hotplex-errors). Later versions may add codes.
const (
	// StatusOK is success; it never appears in an *Error.
	StatusOK Status = 0
	// StatusInvalidArgument: a bad argument (relative allow path, tool input
	// that is not a JSON object, ...).
	StatusInvalidArgument Status = 1
	// StatusUTF8: an input string is not valid UTF-8.
	StatusUTF8 Status = 2
	// StatusInvalidRule: a custom rule could not be used.
	StatusInvalidRule Status = 3
	// StatusPanic: hotplex hit an internal error (a bug), which was contained.
	StatusPanic Status = 4
	// StatusInvalidConfig: an engine option, session id, workdir or prompt
	// was rejected before anything ran.
	StatusInvalidConfig Status = 5
	// StatusDangerBlocked: the WAF blocked the prompt (Detail holds the verdict).
	StatusDangerBlocked Status = 6
	// StatusTurnTimeout: the turn exceeded its timeout; the agent was
	// interrupted (or killed if it did not stop).
	StatusTurnTimeout Status = 7
	// StatusSessionDead: the agent died during the turn; the next turn resumes.
	StatusSessionDead Status = 8
	// StatusTurnFailed: the agent ended the turn with an error result
	// (Detail holds its subtype).
	StatusTurnFailed Status = 9
	// StatusCapacityExceeded: every session slot holds a busy session.
	StatusCapacityExceeded Status = 10
	// StatusStartFailed: the agent could not be started.
	StatusStartFailed Status = 11
	// StatusClosed: the engine was closed.
	StatusClosed Status = 12
	// StatusPending: nothing happened within a poll's timeout (internal to
	// Engine.Execute; never returned to callers).
	StatusPending Status = 13
	// StatusSpawn: a contained process could not be spawned.
	StatusSpawn Status = 14
	// StatusIO: an operating-system call failed.
	StatusIO Status = 15
	// StatusContainment: containment of an agent could not be confirmed.
	StatusContainment Status = 16
)

// String returns the status's stable name: "ok", "invalid_config",
// "turn_timeout", ... (the schema's x-hotplex-errors), or "unknown".
func (s Status) String() string {
	return C.GoString(C.hotplex_status_name(C.int32_t(s)))
}

// Error is an error reported by the hotplex library: its status code and
// message. errors.Is(err, ErrInvalidRule) (and the other sentinels) matches
// on the status.
type Error struct {
	// Status is the C status code.
	Status Status
	// Message is the library's description, e.g.
	// "invalid rule at line 3: unknown level ...".
	Message string
	// Detail is JSON for errors that carry more than a message, else nil:
	// {"error":"danger_blocked","verdict":{...}} for StatusDangerBlocked,
	// {"error":"turn_failed","subtype":...,"message":...} for StatusTurnFailed.
	Detail json.RawMessage
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Message == "" {
		return "hotplex: " + e.Status.String()
	}
	return "hotplex: " + e.Message
}

// Is reports whether target is an *Error with the same status, which makes
// errors.Is(err, ErrUTF8) and friends work.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// Sentinels for errors.Is. The errors returned carry the library's message;
// they match these by status.
var (
	// ErrInvalidArgument matches errors for bad arguments.
	ErrInvalidArgument error = &Error{Status: StatusInvalidArgument}
	// ErrUTF8 matches errors for input that is not valid UTF-8 (Go strings
	// may hold any bytes).
	ErrUTF8 error = &Error{Status: StatusUTF8}
	// ErrInvalidRule matches errors for bad custom rules; the message names
	// the line.
	ErrInvalidRule error = &Error{Status: StatusInvalidRule}
	// ErrPanic matches internal errors of the library (bugs, contained).
	ErrPanic error = &Error{Status: StatusPanic}
	// ErrInvalidConfig matches rejected engine options, session ids,
	// workdirs and prompts.
	ErrInvalidConfig error = &Error{Status: StatusInvalidConfig}
	// ErrDangerBlocked matches prompts the WAF blocked.
	ErrDangerBlocked error = &Error{Status: StatusDangerBlocked}
	// ErrTurnTimeout matches turns that exceeded their timeout.
	ErrTurnTimeout error = &Error{Status: StatusTurnTimeout}
	// ErrSessionDead matches turns whose agent died.
	ErrSessionDead error = &Error{Status: StatusSessionDead}
	// ErrTurnFailed matches turns the agent ended with an error result.
	ErrTurnFailed error = &Error{Status: StatusTurnFailed}
	// ErrCapacityExceeded matches a full pool of busy sessions.
	ErrCapacityExceeded error = &Error{Status: StatusCapacityExceeded}
	// ErrStartFailed matches agents that could not be started.
	ErrStartFailed error = &Error{Status: StatusStartFailed}
	// ErrEngineClosed matches calls on a closed Engine.
	ErrEngineClosed error = &Error{Status: StatusClosed}
	// ErrSpawn matches contained processes that could not be spawned.
	ErrSpawn error = &Error{Status: StatusSpawn}
	// ErrIO matches failed operating-system calls.
	ErrIO error = &Error{Status: StatusIO}
	// ErrContainment matches containment that could not be confirmed.
	ErrContainment error = &Error{Status: StatusContainment}
	// ErrClosed is returned by checks on a closed Detector.
	ErrClosed = errors.New("hotplex: detector is closed")

	// errPending is a poll that saw nothing (internal to Engine.Execute).
	errPending error = &Error{Status: StatusPending}
)
