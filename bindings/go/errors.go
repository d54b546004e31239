package hotplex

import (
	"errors"
	"fmt"
)

// Status is a hotplex_status code of the C ABI.
type Status int

// The status codes of the C ABI. Later versions may add codes.
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
)

// String returns the name of the status, e.g. "invalid rule".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusInvalidArgument:
		return "invalid argument"
	case StatusUTF8:
		return "invalid UTF-8"
	case StatusInvalidRule:
		return "invalid rule"
	case StatusPanic:
		return "internal error"
	}
	return fmt.Sprintf("status %d", int(s))
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
	// ErrClosed is returned by checks on a closed Detector.
	ErrClosed = errors.New("hotplex: detector is closed")
)
