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
	// Context is what else the agent said about the call (empty if
	// nothing): "permission_suggestions" (permission updates the host may
	// grant by returning them as "updatedPermissions"),
	// "decision_reason", "tool_use_id", "blocked_path", ...
	Context map[string]any `json:"context"`
}

//export hotplexGoPermission
func hotplexGoPermission(handle C.uintptr_t, request *C.char, requestLen C.size_t, slot *C.hotplex_permission_answer) {
	raw := C.GoBytes(unsafe.Pointer(request), C.int(requestLen))
	reply, err := answer("CanUseTool", func() (any, error) {
		h, err := hostOf(handle)
		if err != nil {
			return nil, err
		}
		if h.canUseTool == nil {
			return nil, errors.New("no CanUseTool function")
		}
		var req ToolRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decoding the tool request: %w", err)
		}
		return h.canUseTool(req), nil
	})
	if err != nil {
		p, n := cString(err.Error())
		C.hotplex_permission_answer_fail(slot, p, n)
		return
	}
	text := string(reply)
	p, n := cString(text)
	// A rejected answer denies on the library's side; nothing to do here.
	C.hotplex_permission_answer_set(slot, p, n)
}
