package hotplex

/*
#include <stdint.h>
#include "hotplex.h"
*/
import "C"

import (
	"runtime/cgo"
	"strings"
	"unsafe"
)

// CheckKind says which check produced an audited verdict.
type CheckKind int

// The check kinds, with the C ABI's numbers.
const (
	// KindCommand is Detector.CheckCommand.
	KindCommand CheckKind = 1
	// KindPrompt is Detector.CheckPrompt.
	KindPrompt CheckKind = 2
	// KindTool is Detector.CheckTool.
	KindTool CheckKind = 3
)

// String returns "command", "prompt" or "tool".
func (k CheckKind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindPrompt:
		return "prompt"
	case KindTool:
		return "tool"
	}
	return "unknown"
}

// AuditEvent is what a WithAudit function receives for every verdict that is
// not safe.
type AuditEvent struct {
	// Kind is the check that was made.
	Kind CheckKind
	// Input is the checked input (for tool calls: the tool input JSON).
	Input string
	// Verdict is the verdict the check returns.
	Verdict *Verdict
}

//export hotplexGoAudit
func hotplexGoAudit(handle C.uintptr_t, kind C.hotplex_check_kind, input *C.char, inputLen C.size_t, v *C.hotplex_verdict) {
	// A panic must not unwind through the Rust frames below this one.
	defer func() { _ = recover() }()
	fn, ok := cgo.Handle(handle).Value().(func(AuditEvent))
	if !ok || fn == nil {
		return
	}
	fn(AuditEvent{
		Kind:    CheckKind(kind),
		Input:   strings.Clone(unsafe.String((*byte)(unsafe.Pointer(input)), int(inputLen))),
		Verdict: convertVerdict(v),
	})
}
