package hotplex

/*
#include <stdint.h>
#include "hotplex.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// ToolRequest is a tool call the WAF let through, for
// EngineOptions.CanUseTool.
type ToolRequest struct {
	// SessionID is the session the call belongs to.
	SessionID string `json:"session_id"`
	// ToolName is the tool ("Bash", "Write", ...).
	ToolName string `json:"tool_name"`
	// Input is the tool input, as the agent sent it.
	Input map[string]any `json:"input"`
	// Verdict is the WAF's verdict on it (not blocking).
	Verdict *Verdict `json:"verdict"`
}

//export hotplexGoPermission
func hotplexGoPermission(handle C.uintptr_t, request *C.char, requestLen C.size_t, answer *C.hotplex_permission_answer) {
	reply, err := askHost(cgo.Handle(handle), C.GoBytes(unsafe.Pointer(request), C.int(requestLen)))
	if err != nil {
		why := err.Error()
		p, n := cString(why)
		C.hotplex_permission_answer_fail(answer, p, n)
		return
	}
	text := string(reply)
	p, n := cString(text)
	// A rejected answer denies on the library's side; nothing to do here.
	C.hotplex_permission_answer_set(answer, p, n)
}

// askHost calls the CanUseTool behind h and encodes its answer. A panic
// (which must not unwind into the library) and an answer that cannot be
// encoded are errors, which deny.
func askHost(h cgo.Handle, request []byte) (reply []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("CanUseTool panicked: %v", r)
		}
	}()
	fn, _ := h.Value().(func(ToolRequest) any)
	if fn == nil {
		return nil, errors.New("no CanUseTool function")
	}
	var req ToolRequest
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, fmt.Errorf("decoding the tool request: %w", err)
	}
	return json.Marshal(fn(req))
}
