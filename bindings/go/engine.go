package hotplex

/*
#include <stdbool.h>
#include <stdlib.h>
#include "hotplex.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// pollInterval is how often Execute wakes to check its context.
const pollInterval = 50 * time.Millisecond

// EngineOptions configures an Engine. Zero values mean the library's
// defaults (binary "claude", 64 sessions, idle timeout 30 min, turn timeout
// 5 min, startup timeout 30 s, interrupt grace 5 s, 4 concurrent starts).
type EngineOptions struct {
	// Binary is the agent program (looked up in PATH).
	Binary string
	// Args are appended to the CLI's arguments.
	Args []string
	// Env is added to the agent's environment.
	Env map[string]string
	// EnvAllow replaces the allow-list of host variables the agent inherits
	// (default PATH, HOME, USER, LANG, LC_*, TERM, TMPDIR, SHELL).
	EnvAllow []string
	// MaxSessions is the most sessions at once.
	MaxSessions int
	// MaxConcurrentStarts is the most processes starting at once.
	MaxConcurrentStarts int
	// MaxPromptBytes is the largest prompt accepted.
	MaxPromptBytes int
	// IdleTimeout stops sessions with no turn and no output for this long.
	IdleTimeout time.Duration
	// TurnTimeout is the default limit of one turn.
	TurnTimeout time.Duration
	// StartupTimeout bounds a new process's first output.
	StartupTimeout time.Duration
	// InterruptGrace is how long an interrupted turn may take to end
	// before its process is killed.
	InterruptGrace time.Duration
	// StateDir holds resume markers and containment records; empty keeps
	// markers in memory.
	StateDir string
	// Namespace salts the deterministic provider session id ("default").
	Namespace string
	// PermissionMode, AllowedTools, DisallowedTools, SystemPrompt and Model
	// become the CLI's --permission-mode, --allowed-tools,
	// --disallowed-tools, --append-system-prompt and --model.
	PermissionMode  string
	AllowedTools    []string
	DisallowedTools []string
	SystemPrompt    string
	Model           string
	// AllowedRoots restricts workdirs to these directories.
	AllowedRoots []string
	// DefaultWorkdir is the workdir of turns that name none (default: the
	// host's current directory).
	DefaultWorkdir string
}

func (o EngineOptions) toJSON() ([]byte, error) {
	m := map[string]any{}
	set := func(k string, v any, present bool) {
		if present {
			m[k] = v
		}
	}
	set("binary", o.Binary, o.Binary != "")
	set("args", o.Args, o.Args != nil)
	set("env", o.Env, o.Env != nil)
	set("env_allow", o.EnvAllow, o.EnvAllow != nil)
	set("max_sessions", o.MaxSessions, o.MaxSessions != 0)
	set("max_concurrent_starts", o.MaxConcurrentStarts, o.MaxConcurrentStarts != 0)
	set("max_prompt_bytes", o.MaxPromptBytes, o.MaxPromptBytes != 0)
	set("idle_timeout", o.IdleTimeout.Seconds(), o.IdleTimeout != 0)
	set("turn_timeout", o.TurnTimeout.Seconds(), o.TurnTimeout != 0)
	set("startup_timeout", o.StartupTimeout.Seconds(), o.StartupTimeout != 0)
	set("interrupt_grace", o.InterruptGrace.Seconds(), o.InterruptGrace != 0)
	set("state_dir", o.StateDir, o.StateDir != "")
	set("namespace", o.Namespace, o.Namespace != "")
	set("permission_mode", o.PermissionMode, o.PermissionMode != "")
	set("allowed_tools", o.AllowedTools, o.AllowedTools != nil)
	set("disallowed_tools", o.DisallowedTools, o.DisallowedTools != nil)
	set("system_prompt", o.SystemPrompt, o.SystemPrompt != "")
	set("model", o.Model, o.Model != "")
	set("allowed_roots", o.AllowedRoots, o.AllowedRoots != nil)
	set("default_workdir", o.DefaultWorkdir, o.DefaultWorkdir != "")
	return json.Marshal(m)
}

// TurnOptions configures one turn; the zero value is fine.
type TurnOptions struct {
	// Workdir is the agent's working directory (created if missing). A
	// session whose process runs elsewhere is restarted there.
	Workdir string
	// Timeout overrides the engine's TurnTimeout.
	Timeout time.Duration
	// WAFApproved skips the prompt check (tool calls are still screened).
	WAFApproved bool
	// OnEvent, if set, is called for each event in order, on the calling
	// goroutine, before Execute returns.
	OnEvent func(Event)
}

// Event is one event of a turn. Type is the seed's name: "session_start",
// "thinking", "answer", "tool_use", "tool_result", "permission_request",
// "danger_block", "session_stats" or "error"; Data holds its fields.
type Event struct {
	Type string
	Data map[string]any
}

// Usage is a turn's token counts.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// ToolCall is one tool call of a turn.
type ToolCall struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	IsError    bool     `json:"is_error"`
	DurationMs *float64 `json:"duration_ms"`
}

// TurnStats are the statistics of one turn.
type TurnStats struct {
	Usage         Usage      `json:"usage"`
	CostUSD       float64    `json:"cost_usd"`
	CLIDurationMs int64      `json:"cli_duration_ms"`
	APIDurationMs int64      `json:"api_duration_ms"`
	NumTurns      int64      `json:"num_turns"`
	Model         string     `json:"model"`
	Tools         []ToolCall `json:"tools"`
}

// Turn is a finished turn.
type Turn struct {
	Text              string    `json:"text"`
	ColdStart         bool      `json:"cold_start"`
	Resumed           bool      `json:"resumed"`
	DurationMs        float64   `json:"duration_ms"`
	QueuedMs          float64   `json:"queued_ms"`
	PID               int       `json:"pid"`
	ProviderSessionID string    `json:"provider_session_id"`
	Stats             TurnStats `json:"stats"`
	Events            []Event   `json:"-"`
}

// SessionInfo is a snapshot of one session.
type SessionInfo struct {
	ID                string  `json:"id"`
	PID               int     `json:"pid"` // 0 when no process runs
	Status            string  `json:"status"`
	Turns             int64   `json:"turns"`
	Pending           int64   `json:"pending"`
	Workdir           string  `json:"workdir"`
	IdleMs            float64 `json:"idle_ms"`
	ProviderSessionID string  `json:"provider_session_id"`
}

// SessionStats are a session's totals over all its turns.
type SessionStats struct {
	Turns                    int64   `json:"turns"`
	FailedTurns              int64   `json:"failed_turns"`
	ColdStarts               int64   `json:"cold_starts"`
	Resumes                  int64   `json:"resumes"`
	InputTokens              int64   `json:"input_tokens"`
	OutputTokens             int64   `json:"output_tokens"`
	CacheCreationInputTokens int64   `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64   `json:"cache_read_input_tokens"`
	CostUSD                  float64 `json:"cost_usd"`
	ToolCalls                int64   `json:"tool_calls"`
	ToolErrors               int64   `json:"tool_errors"`
	ToolsDenied              int64   `json:"tools_denied"`
	BusyMs                   int64   `json:"busy_ms"`
	BadLines                 int64   `json:"bad_lines"`
	Model                    string  `json:"model"`
}

// Engine is the session pool: one hot agent process per session id, each
// contained, every tool call screened by the WAF. Safe for concurrent use.
type Engine struct {
	mu sync.RWMutex
	e  *C.hotplex_engine
}

// NewEngine starts an engine.
func NewEngine(opts EngineOptions) (*Engine, error) {
	js, err := opts.toJSON()
	if err != nil {
		return nil, err
	}
	var out *C.hotplex_engine
	text := string(js)
	p, n := cString(text)
	if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_engine_new(p, n, &out)) }); err != nil {
		return nil, err
	}
	return &Engine{e: out}, nil
}

// jsonString copies a C string owned by hotplex and frees it.
func jsonString(p *C.char) []byte {
	defer C.hotplex_string_free(p)
	return []byte(C.GoString(p))
}

func decodeEvent(raw []byte) Event {
	var data map[string]any
	_ = json.Unmarshal(raw, &data)
	typ, _ := data["type"].(string)
	delete(data, "type")
	return Event{Type: typ, Data: data}
}

// Execute runs one turn on session sessionID (started or resumed on first
// use) and returns it. Cancelling ctx cancels the turn (the agent is
// interrupted; the session stays usable) and returns ctx.Err(). Failures
// are *Error values matching ErrDangerBlocked, ErrTurnTimeout,
// ErrSessionDead, ErrTurnFailed, ErrCapacityExceeded, ErrStartFailed,
// ErrInvalidConfig or ErrEngineClosed.
func (e *Engine) Execute(ctx context.Context, sessionID, prompt string, opts *TurnOptions) (*Turn, error) {
	if opts == nil {
		opts = &TurnOptions{}
	}
	topts := map[string]any{}
	if opts.Workdir != "" {
		topts["workdir"] = opts.Workdir
	}
	if opts.Timeout > 0 {
		topts["timeout"] = opts.Timeout.Seconds()
	}
	if opts.WAFApproved {
		topts["waf_approved"] = true
	}
	tjs, err := json.Marshal(topts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stream *C.hotplex_turn_stream
	e.mu.RLock()
	if e.e == nil {
		e.mu.RUnlock()
		return nil, ErrEngineClosed
	}
	tText := string(tjs)
	ip, in := cString(sessionID)
	pp, pn := cString(prompt)
	tp, tn := cString(tText)
	err = call(func() C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_submit(e.e, ip, in, pp, pn, tp, tn, &stream))
	})
	e.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	// Freeing the stream before the end cancels the turn.
	defer C.hotplex_turn_stream_free(stream)
	var events []Event
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ev *C.char
		err := call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_turn_stream_next(stream, C.int64_t(pollInterval.Milliseconds()), &ev))
		})
		var he *Error
		if errors.As(err, &he) && he.Status == StatusPending {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ev == nil {
			break
		}
		event := decodeEvent(jsonString(ev))
		events = append(events, event)
		if opts.OnEvent != nil {
			opts.OnEvent(event)
		}
	}
	var tj *C.char
	if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_turn_stream_finish(stream, &tj)) }); err != nil {
		return nil, err
	}
	turn := &Turn{}
	if err := json.Unmarshal(jsonString(tj), turn); err != nil {
		return nil, err
	}
	turn.Events = events
	return turn, nil
}

// Sessions returns a snapshot of every session, sorted by id.
func (e *Engine) Sessions() ([]SessionInfo, error) {
	var out []SessionInfo
	err := e.withJSON(func(p **C.char) C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_sessions(e.e, p))
	}, &out)
	return out, err
}

// SessionStats returns a session's totals, or nil for an unknown id.
func (e *Engine) SessionStats(sessionID string) (*SessionStats, error) {
	var out *SessionStats
	ip, in := cString(sessionID)
	err := e.withJSON(func(p **C.char) C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_session_stats(e.e, ip, in, p))
	}, &out)
	return out, err
}

// StopSession stops a session: its running and queued turns fail with
// ErrSessionDead and its process tree is killed (it returns once the tree
// is confirmed gone). It reports whether the session existed.
func (e *Engine) StopSession(sessionID string) (bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.e == nil {
		return false, ErrEngineClosed
	}
	var existed C.bool
	ip, in := cString(sessionID)
	err := call(func() C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_stop_session(e.e, ip, in, &existed))
	})
	return bool(existed), err
}

// Close stops every session, waits until every process tree is gone and
// releases the engine. Running turns fail with ErrEngineClosed. Idempotent.
func (e *Engine) Close() error {
	e.mu.RLock()
	if e.e != nil {
		// Concurrent turns see Closed at once; freeing waits for them to
		// leave the engine (they keep only their own streams).
		_ = call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_engine_close(e.e)) })
	}
	e.mu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e != nil {
		C.hotplex_engine_free(e.e)
		e.e = nil
	}
	return nil
}

func (e *Engine) withJSON(fn func(**C.char) C.hotplex_status, into any) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.e == nil {
		return ErrEngineClosed
	}
	var p *C.char
	if err := call(func() C.hotplex_status { return fn(&p) }); err != nil {
		return err
	}
	return json.Unmarshal(jsonString(p), into)
}
