package hotplex

/*
#include <stdint.h>
#include "hotplex.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/cgo"
	"sort"
	"time"
	"unsafe"
)

// The hook events of the agent (Claude Code), as keys of
// EngineOptions.Hooks. The agent may know more; any event name it sends
// works as a key.
const (
	// HookPreToolUse runs before a tool call (may deny it or rewrite its input).
	HookPreToolUse = "PreToolUse"
	// HookPostToolUse runs after a tool call that ran (sees its output).
	HookPostToolUse = "PostToolUse"
	// HookPostToolUseFailure runs after a tool call that ran and failed.
	HookPostToolUseFailure = "PostToolUseFailure"
	// HookUserPromptSubmit runs when a user message arrives.
	HookUserPromptSubmit = "UserPromptSubmit"
	// HookStop runs before the agent ends its turn.
	HookStop = "Stop"
	// HookSubagentStart runs when a subagent starts.
	HookSubagentStart = "SubagentStart"
	// HookSubagentStop runs when a subagent ends.
	HookSubagentStop = "SubagentStop"
	// HookPreCompact runs before the conversation is compacted.
	HookPreCompact = "PreCompact"
	// HookNotification runs when the agent notifies the user.
	HookNotification = "Notification"
	// HookPermissionRequest runs when the agent would ask for a permission.
	HookPermissionRequest = "PermissionRequest"
	// HookSessionStart runs when the agent's session starts.
	HookSessionStart = "SessionStart"
	// HookSessionEnd runs when the agent's session ends.
	HookSessionEnd = "SessionEnd"
)

// HookInput is one call of a host hook: what the agent sent.
type HookInput struct {
	// SessionID is the host's session id.
	SessionID string
	// Event is the hook event ("PreToolUse", "PostToolUse", ...).
	Event string
	// ToolUseID is the tool call the hook is about ("" when none).
	ToolUseID string
	// ToolName is the tool ("Bash", "mcp__host__get_weather", ...) for the
	// tool events, else "".
	ToolName string
	// ToolInput is the tool's input for the tool events, else nil.
	ToolInput map[string]any
	// ToolResponse is the tool's output for PostToolUse, else nil.
	ToolResponse any
	// Prompt is the user's message for UserPromptSubmit, else "".
	Prompt string
	// Input is the hook's whole input as the agent sent it
	// (hook_event_name, tool_name, tool_input, tool_response, prompt,
	// session_id, ...), for the keys the fields above leave out.
	Input map[string]any
}

// HookFunc is a host hook. It returns the hook's output as the Claude Agent
// SDK's hooks do: nil for nothing to say, or keys such as "continue",
// "stopReason", "systemMessage", "decision", "reason" and
// "hookSpecificOutput" (with "hookEventName", "permissionDecision",
// "permissionDecisionReason", "updatedInput", "additionalContext", ...).
// An error (or a panic) fails the hook: for PreToolUse the tool call is
// denied, for the other events the agent goes on as if it returned nil
// and the turn gets an "error" event. ctx ends at the hook's Timeout (the
// engine stops waiting for it then) and when the engine closes.
//
// It runs on a hotplex thread, concurrently for different sessions, while
// the agent waits: keep it quick and safe for concurrent use. It may start
// goroutines that call the engine (Interrupt, SetModel, ...), but must not
// call the engine itself.
type HookFunc func(ctx context.Context, in HookInput) (map[string]any, error)

// HookMatcher is a group of hooks for one event and one set of tools.
type HookMatcher struct {
	// Matcher is the tools the hooks apply to: a tool name ("Bash") or
	// alternatives ("Write|Edit"), matched by the agent; "" for every
	// call (and for events that are not about a tool).
	Matcher string
	// Hooks run in order, each as its own hook of the agent.
	Hooks []HookFunc
	// Timeout is how long each hook may take (0: 60 s). Past it a
	// PreToolUse hook denies and the others are reported.
	Timeout time.Duration
}

// ToolFunc is a host tool's function: it gets the model's arguments and
// returns the tool's result: a string (one text block the model reads), a
// map with a "content" list (the MCP result itself, e.g. with "isError":
// true or image blocks), or any other JSON-encodable value (sent as its
// JSON text). An error (or a panic) is an error result the model sees; the
// turn goes on. ctx ends when the engine closes. The thread rules are
// HookFunc's.
type ToolFunc func(ctx context.Context, args map[string]any) (any, error)

// Tool is a host-defined tool, served to the agent as a tool of an
// in-process MCP server (the model sees it as mcp__<server>__<name>). Its
// calls go through the WAF and CanUseTool like any tool's.
type Tool struct {
	// Name is the tool's name within its server (letters, digits, _ and -).
	Name string
	// Description tells the model what it does.
	Description string
	// InputSchema is the JSON Schema of its arguments (an object schema;
	// nil: no arguments).
	InputSchema map[string]any
	// Func runs it.
	Func ToolFunc
}

// ToolServer is an in-process MCP server of host tools.
type ToolServer struct {
	// Name is the server's name (letters, digits, _ and -).
	Name string
	// Version is what the server reports ("": 1.0.0).
	Version string
	// Tools are its tools.
	Tools []Tool
}

// hookSpec is the core's HookSpec (the wire form of one hook).
type hookSpec struct {
	Event   string   `json:"event"`
	Matcher *string  `json:"matcher"`
	ID      string   `json:"id"`
	Timeout *float64 `json:"timeout,omitempty"`
}

// toolSpec and toolServerSpec are the core's ToolSpec and ToolServer.
type toolSpec struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	InputSchema map[string]any `json:"input_schema,omitempty"`
}

type toolServerSpec struct {
	Name    string     `json:"name"`
	Version string     `json:"version,omitempty"`
	Tools   []toolSpec `json:"tools"`
}

// defaultHookTimeout is the core's default for a hook without a timeout.
const defaultHookTimeout = 60 * time.Second

// hostHook is one registered hook.
type hostHook struct {
	fn      HookFunc
	timeout time.Duration
}

// host holds an engine's Go callbacks, behind one cgo.Handle that the
// library passes to the permission, hook and tool trampolines.
type host struct {
	ctx        context.Context // cancelled by Close
	cancel     context.CancelFunc
	canUseTool func(ToolRequest) any
	hooks      map[string]hostHook            // by hook id
	tools      map[string]map[string]ToolFunc // by server, then tool
}

// newHost turns the options' callbacks into the wire specs and the host
// that runs them. Hook ids are assigned here (unique per engine).
func newHost(opts EngineOptions) (*host, []hookSpec, []toolServerSpec, error) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{
		ctx:        ctx,
		cancel:     cancel,
		canUseTool: opts.CanUseTool,
		hooks:      map[string]hostHook{},
		tools:      map[string]map[string]ToolFunc{},
	}
	var hooks []hookSpec
	events := make([]string, 0, len(opts.Hooks))
	for ev := range opts.Hooks {
		events = append(events, ev)
	}
	sort.Strings(events) // the same ids for the same options
	for _, ev := range events {
		for _, m := range opts.Hooks[ev] {
			for _, fn := range m.Hooks {
				if fn == nil {
					cancel()
					return nil, nil, nil, &Error{Status: StatusInvalidConfig, Message: fmt.Sprintf("hooks: a nil HookFunc for %s", ev)}
				}
				id := fmt.Sprintf("go-%d", len(hooks)+1)
				spec := hookSpec{Event: ev, ID: id}
				if m.Matcher != "" {
					matcher := m.Matcher
					spec.Matcher = &matcher
				}
				timeout := defaultHookTimeout
				if m.Timeout != 0 {
					timeout = m.Timeout
					secs := m.Timeout.Seconds()
					spec.Timeout = &secs
				}
				hooks = append(hooks, spec)
				h.hooks[id] = hostHook{fn: fn, timeout: timeout}
			}
		}
	}
	var servers []toolServerSpec
	for _, s := range opts.Tools {
		spec := toolServerSpec{Name: s.Name, Version: s.Version, Tools: []toolSpec{}}
		fns := h.tools[s.Name]
		if fns == nil {
			fns = map[string]ToolFunc{}
			h.tools[s.Name] = fns
		}
		for _, t := range s.Tools {
			if t.Func == nil {
				cancel()
				return nil, nil, nil, &Error{Status: StatusInvalidConfig, Message: fmt.Sprintf("tools: %s/%s has no Func", s.Name, t.Name)}
			}
			spec.Tools = append(spec.Tools, toolSpec{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
			fns[t.Name] = t.Func
		}
		servers = append(servers, spec)
	}
	return h, hooks, servers, nil
}

// needed tells whether the library must call this host at all.
func (h *host) needed() (permission, hooks, tools bool) {
	return h.canUseTool != nil, len(h.hooks) > 0, len(h.tools) > 0
}

// answer runs a host function and encodes what it returns: the JSON for
// the answer slot, or why there is none. A panic (which must not unwind
// into the library) and a value that cannot be encoded are failures.
func answer(what string, fn func() (any, error)) (reply []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v", what, r)
		}
	}()
	v, err := fn()
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// hostOf is the host behind a handle the library passed back.
func hostOf(handle C.uintptr_t) (*host, error) {
	h, _ := cgo.Handle(handle).Value().(*host)
	if h == nil {
		return nil, errors.New("no host functions")
	}
	return h, nil
}

// setCallbackAnswer fills a hook's or tool's answer slot.
func setCallbackAnswer(slot *C.hotplex_callback_answer, reply []byte, err error) {
	if err != nil {
		p, n := cString(err.Error())
		C.hotplex_callback_answer_fail(slot, p, n)
		return
	}
	text := string(reply)
	p, n := cString(text)
	// A rejected answer fails the call on the library's side.
	C.hotplex_callback_answer_set(slot, p, n)
}

// hookCall is the library's JSON for one hook call.
type hookCall struct {
	SessionID string         `json:"session_id"`
	HookID    string         `json:"hook_id"`
	Event     string         `json:"event"`
	Input     map[string]any `json:"input"`
	ToolUseID *string        `json:"tool_use_id"`
}

//export hotplexGoHook
func hotplexGoHook(handle C.uintptr_t, call *C.char, callLen C.size_t, slot *C.hotplex_callback_answer) {
	raw := C.GoBytes(unsafe.Pointer(call), C.int(callLen))
	reply, err := answer("the hook", func() (any, error) {
		h, err := hostOf(handle)
		if err != nil {
			return nil, err
		}
		var c hookCall
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("decoding the hook call: %w", err)
		}
		hook, ok := h.hooks[c.HookID]
		if !ok {
			return nil, fmt.Errorf("no hook with id %q", c.HookID)
		}
		in := HookInput{SessionID: c.SessionID, Event: c.Event, Input: c.Input}
		if c.ToolUseID != nil {
			in.ToolUseID = *c.ToolUseID
		}
		in.ToolName, _ = c.Input["tool_name"].(string)
		in.ToolInput, _ = c.Input["tool_input"].(map[string]any)
		in.ToolResponse = c.Input["tool_response"]
		in.Prompt, _ = c.Input["prompt"].(string)
		ctx, cancel := context.WithTimeout(h.ctx, hook.timeout)
		defer cancel()
		out, err := hook.fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return out, nil
	})
	setCallbackAnswer(slot, reply, err)
}

// toolCall is the library's JSON for one tool call.
type toolCall struct {
	SessionID string         `json:"session_id"`
	Server    string         `json:"server"`
	Tool      string         `json:"tool"`
	Arguments map[string]any `json:"arguments"`
}

//export hotplexGoTool
func hotplexGoTool(handle C.uintptr_t, call *C.char, callLen C.size_t, slot *C.hotplex_callback_answer) {
	raw := C.GoBytes(unsafe.Pointer(call), C.int(callLen))
	reply, err := answer("the tool", func() (any, error) {
		h, err := hostOf(handle)
		if err != nil {
			return nil, err
		}
		var c toolCall
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("decoding the tool call: %w", err)
		}
		fn := h.tools[c.Server][c.Tool]
		if fn == nil {
			return nil, fmt.Errorf("no tool %s/%s", c.Server, c.Tool)
		}
		if c.Arguments == nil {
			c.Arguments = map[string]any{}
		}
		return fn(h.ctx, c.Arguments)
	})
	setCallbackAnswer(slot, reply, err)
}
