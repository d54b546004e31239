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

// The Status constants and their errors.Is sentinels (ErrInvalidArgument,
// ..., ErrEngineClosed for StatusClosed) are generated from the schema's
// x-hotplex-errors into contract_gen.go, with the records of the contract.
//go:generate go run ./internal/gencontract

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
	// {"error":"turn_failed","subtype":...,"message":...} for StatusTurnFailed,
	// {"error":"owned_elsewhere","session":...,"owner":...} for
	// StatusOwnedElsewhere (the owner is where the session's turns belong).
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

// ErrClosed is returned by checks on a closed Detector (a closed Engine
// returns errors matching ErrEngineClosed).
var ErrClosed = errors.New("hotplex: detector is closed")
