package hotplex

/*
#include <stdbool.h>
#include <stdint.h>
#include "hotplex.h"

// Implemented in Go (permission.go, host.go, telemetry.go).
extern void hotplexGoPermission(uintptr_t handle, char *request, size_t request_len,
                                hotplex_permission_answer *answer);
extern void hotplexGoHook(uintptr_t handle, char *call, size_t call_len,
                          hotplex_callback_answer *answer);
extern void hotplexGoTool(uintptr_t handle, char *call, size_t call_len,
                          hotplex_callback_answer *answer);
extern void hotplexGoObserver(uintptr_t handle, char *record, size_t len);

// Forwards tool calls to Go; user_data carries a runtime/cgo.Handle.
static void hotplex_go_permission_trampoline(void *user_data, const char *request,
                                             size_t request_len,
                                             hotplex_permission_answer *answer) {
    hotplexGoPermission((uintptr_t)user_data, (char *)request, request_len, answer);
}

// Forwards host hook calls to Go; user_data carries the same handle.
static void hotplex_go_hook_trampoline(void *user_data, const char *call, size_t call_len,
                                       hotplex_callback_answer *answer) {
    hotplexGoHook((uintptr_t)user_data, (char *)call, call_len, answer);
}

// Forwards host tool calls to Go; user_data carries the same handle.
static void hotplex_go_tool_trampoline(void *user_data, const char *call, size_t call_len,
                                       hotplex_callback_answer *answer) {
    hotplexGoTool((uintptr_t)user_data, (char *)call, call_len, answer);
}

// Forwards lifecycle records to Go; user_data carries a runtime/cgo.Handle.
static void hotplex_go_observer_trampoline(void *user_data, const char *record, size_t len) {
    hotplexGoObserver((uintptr_t)user_data, (char *)record, len);
}

// Creates an engine whose tool calls, hooks, host tools and lifecycle
// records go to the Go values behind the handles (0: none); `uses` says
// which of the host's callbacks to set (1 permission, 2 hooks, 4 tools).
static hotplex_status hotplex_go_engine_new(const char *opts, size_t len, uintptr_t host,
                                            int uses, uintptr_t observer,
                                            hotplex_engine **out) {
    hotplex_engine_callbacks cb = {0};
    cb.size = sizeof cb;
    cb.permission = (uses & 1) ? hotplex_go_permission_trampoline : NULL;
    cb.permission_data = (void *)host;
    cb.hook = (uses & 2) ? hotplex_go_hook_trampoline : NULL;
    cb.hook_data = (void *)host;
    cb.tool = (uses & 4) ? hotplex_go_tool_trampoline : NULL;
    cb.tool_data = (void *)host;
    cb.observer = observer ? hotplex_go_observer_trampoline : NULL;
    cb.observer_data = (void *)observer;
    return hotplex_engine_new_with_callbacks(opts, len, &cb, out);
}
*/
import "C"

import (
	"context"
	"encoding/json"
	"reflect"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
)

// The providers: the protocols an agent may speak (EngineOptions.Provider,
// SessionOptions.Provider).
const (
	// ProviderClaudeCode is Claude Code's stream-json protocol (the
	// default).
	ProviderClaudeCode = "claude-code"
	// ProviderACP is the Agent Client Protocol (JSON-RPC 2.0 over the
	// agent's stdio), spoken by "opencode acp", "gemini --acp" and others.
	ProviderACP = "acp"
)

// EngineOptions configures an Engine: the core's engine options (the
// schema's EngineOptions), one field per option, the json tag naming it. A
// zero field leaves the option to the core's default; durations are sent as
// seconds. A bad value makes NewEngine fail with ErrInvalidConfig naming
// the option.
type EngineOptions struct {
	// Binary is the agent program: a name looked up in PATH (Env's PATH if
	// it sets one) or a path. NewEngine fails if it cannot be found.
	Binary string `json:"binary"`
	// Args are appended to the CLI's arguments (for an ACP agent: its
	// arguments, e.g. []string{"acp"} for opencode).
	Args []string `json:"args"`
	// Provider is the protocol the agents speak: ProviderClaudeCode (""
	// too, the default) or ProviderACP, the Agent Client Protocol, where
	// Binary and Args are the agent's command line ("opencode" with
	// []string{"acp"}, "gemini" with []string{"--acp"}). An ACP engine
	// refuses the options only Claude Code takes (PermissionMode,
	// AllowedTools, DisallowedTools, SystemPrompt, Model, Hooks, Tools,
	// Prewarm) with ErrInvalidConfig naming them. A session may pick its
	// own (SessionOptions.Provider, Binary, Args).
	Provider string `json:"provider"`
	// Env is added to the agent's environment.
	Env map[string]string `json:"env"`
	// EnvAllow replaces the allow-list of host variables the agent inherits
	// ("*" suffix: prefix match).
	EnvAllow []string `json:"env_allow"`
	// MaxSessions is the most sessions at once.
	MaxSessions int `json:"max_sessions"`
	// MaxConcurrentStarts is the most processes starting at once.
	MaxConcurrentStarts int `json:"max_concurrent_starts"`
	// MaxPromptBytes is the largest prompt accepted.
	MaxPromptBytes int `json:"max_prompt_bytes"`
	// PartialMessages streams the answer as it is generated: agents start
	// with --include-partial-messages and turns yield "answer_delta"
	// ("thinking_delta", "tool_input_delta") events before the complete
	// "answer".
	PartialMessages bool `json:"partial_messages"`
	// MaxLineBytes is the longest line of agent output kept; a longer one
	// is dropped (a turn's result that long fails the turn).
	MaxLineBytes int `json:"max_line_bytes"`
	// MaxTurnEvents is the most events one turn keeps and streams; past it
	// (or past MaxTurnEventBytes) the turn's further events are dropped and
	// counted in TurnStats.EventsDropped, after one "error" event.
	MaxTurnEvents int `json:"max_turn_events"`
	// MaxTurnEventBytes is the most bytes of event payload one turn keeps
	// and streams (see MaxTurnEvents).
	MaxTurnEventBytes int `json:"max_turn_event_bytes"`
	// IdleTimeout stops sessions with no turn and no output for this long.
	IdleTimeout time.Duration `json:"idle_timeout"`
	// TurnTimeout is the default limit of one turn.
	TurnTimeout time.Duration `json:"turn_timeout"`
	// StartupTimeout bounds a new process's first output.
	StartupTimeout time.Duration `json:"startup_timeout"`
	// InterruptGrace is how long an interrupted turn may take to end
	// before its process is killed.
	InterruptGrace time.Duration `json:"interrupt_grace"`
	// ControlTimeout bounds each live control (Interrupt, SetModel,
	// SetPermissionMode, ContextUsage, McpStatus): past it the call fails
	// with ErrControlFailed.
	ControlTimeout time.Duration `json:"control_timeout"`
	// QuestionTimeout is how long a question or plan the agent asks
	// ("ask_user_question", "exit_plan_mode" events) may wait for its
	// answer (AnswerQuestion, ApprovePlan). The turn's own timeout does not
	// run while one waits.
	QuestionTimeout time.Duration `json:"question_timeout"`
	// QuestionTimeoutAnswer is what the agent reads when QuestionTimeout
	// passes (the question or plan is declined with it, and the turn goes
	// on); empty: the turn is interrupted and fails with
	// ErrQuestionTimeout.
	QuestionTimeoutAnswer string `json:"question_timeout_answer"`
	// StateDir holds resume markers and containment records; empty keeps
	// markers in memory.
	StateDir string `json:"state_dir"`
	// Namespace salts the deterministic provider session id.
	Namespace string `json:"namespace"`
	// PermissionMode is the CLI's --permission-mode.
	PermissionMode string `json:"permission_mode"`
	// AllowedTools is the CLI's --allowed-tools.
	AllowedTools []string `json:"allowed_tools"`
	// DisallowedTools is the CLI's --disallowed-tools.
	DisallowedTools []string `json:"disallowed_tools"`
	// SystemPrompt is the CLI's --append-system-prompt.
	SystemPrompt string `json:"system_prompt"`
	// Model is the CLI's --model.
	Model string `json:"model"`
	// AllowedRoots restricts workdirs to these directories.
	AllowedRoots []string `json:"allowed_roots"`
	// DefaultWorkdir is the workdir of a session's first turn when the turn
	// names none (default: the host's current directory).
	DefaultWorkdir string `json:"default_workdir"`
	// Limits caps every session's process tree (nil: no limits).
	Limits *SessionLimits `json:"limits"`
	// Prewarm lists spare-process profiles: agent processes kept started
	// for new conversations, so their first turn skips the agent's cold
	// start (see PrewarmProfile; Engine.Prewarm changes them later).
	Prewarm []PrewarmProfile `json:"prewarm"`
	// Placement spreads sessions across hosts (nil: every session is this
	// engine's, nothing is kept elsewhere): the engine owns a session only
	// while it holds the session's lease in a store the hosts share, and
	// keeps each session's transcript there after every turn, so that
	// another host can take the session up (see PlacementOptions, and
	// Engine.Owns, Adopt, Release, Drain, Load). A turn on a session
	// another host holds fails with ErrOwnedElsewhere.
	Placement *PlacementOptions `json:"placement"`
	// Hooks are host hooks by event (HookPreToolUse, HookPostToolUse,
	// ...; any event name the agent sends): functions the agent calls at
	// its hook events, as the Claude Agent SDK's hooks. The WAF answers
	// first: for PreToolUse a call the WAF blocks is denied without asking
	// the hooks, and an "updatedInput" a hook returns is screened again.
	Hooks map[string][]HookMatcher `json:"hooks"`
	// Tools are host-defined tools, served to the agent as in-process MCP
	// servers: the model sees each as mcp__<server>__<tool>.
	Tools []ToolServer `json:"tools"`
	// CanUseTool, if set, decides every tool call the WAF did not block. It
	// returns any JSON-encodable answer: true (allow), false (deny), a
	// string (deny with that message), map[string]any{"behavior": "deny",
	// "message": ...} (add "interrupt": true to also stop the turn), or
	// {"behavior": "allow"}, optionally with "updatedInput": {...} (run
	// this input instead; the WAF screens it too) and
	// "updatedPermissions": [...] (permission updates for the agent to
	// keep, e.g. one of ToolRequest.Context["permission_suggestions"]).
	// Anything else denies, and so do a panic and an answer that cannot be
	// encoded. It runs on a hotplex thread, possibly concurrently for
	// different sessions, while the session waits: keep it quick and safe
	// for concurrent use, and do not call Close or StopSession of its
	// engine from it.
	CanUseTool func(ToolRequest) any `json:"-"`
	// Observer, if set, receives the engine's lifecycle records (sessions
	// started and exited, turns finished, WAF verdicts, process trees
	// signalled), in order, on a goroutine of the engine's own: never on a
	// turn's path. While it is slow, records wait in a bounded queue and
	// then are dropped, counted in hotplex_observer_dropped_total (see
	// MetricsText); a turn never waits for it. A panic loses that record
	// only. Records of the sessions Close stops are delivered too, possibly
	// shortly after Close returns. It must not call Close of its engine
	// (Close waits for the records still queued).
	Observer func(LifecycleRecord) `json:"-"`
}

// TurnOptions configures one turn (the core's turn options); the zero value
// is fine.
type TurnOptions struct {
	// Workdir is the agent's working directory (created if missing). Empty:
	// the session's current one. A session whose process runs elsewhere is
	// restarted there.
	Workdir string `json:"workdir"`
	// Timeout overrides the engine's TurnTimeout.
	Timeout time.Duration `json:"timeout"`
	// WAFApproved skips the prompt check (tool calls are still screened).
	WAFApproved bool `json:"waf_approved"`
	// PartialMessages overrides the engine's PartialMessages for this turn
	// (nil: the engine's); true needs the engine option.
	PartialMessages *bool `json:"partial_messages"`
	// Session sets the session's agent options from this turn on (nil:
	// keep the current ones). Options that differ from those its process
	// runs with restart it, resuming the conversation.
	Session *SessionOptions `json:"session"`
	// Instructions are task instructions sent with this turn's prompt (in
	// a <context> section before the <user_query>); the WAF screens them
	// with the prompt.
	Instructions string `json:"instructions"`
	// Images are sent with the prompt, before its text.
	Images []ImageInput `json:"images"`
	// QuestionTimeout overrides the engine's QuestionTimeout for this
	// turn's questions and plans.
	QuestionTimeout time.Duration `json:"question_timeout"`
	// OnEvent, if set, is called for each event in order, on the calling
	// goroutine, before Execute returns.
	OnEvent func(Event) `json:"-"`
}

// SessionOptions are one session's agent options (the core's
// SessionOptions): each set field overrides the engine's option of the same
// name, where there is one; the zero value sets nothing.
type SessionOptions struct {
	// Provider is the protocol this session's agent speaks
	// (ProviderClaudeCode or ProviderACP; "": the engine's Provider). A
	// session keeps its provider while it is in the pool: a turn naming
	// another one fails with ErrInvalidConfig (stop the session first). An
	// ACP session refuses the options that are Claude Code CLI flags (all
	// below but Binary, Args and Env) with ErrInvalidConfig naming them.
	Provider string `json:"provider"`
	// Binary is this session's agent program, looked up as the engine's
	// Binary ("": the engine's).
	Binary string `json:"binary"`
	// Args are this session's agent arguments, instead of the engine's Args
	// (nil: the engine's; an empty non-nil list: none). With Binary, an ACP
	// agent's command line.
	Args []string `json:"args"`
	// Model is the agent's model (--model).
	Model string `json:"model"`
	// PermissionMode is the CLI's --permission-mode ("default",
	// "acceptEdits", "plan", "bypassPermissions", ...).
	PermissionMode string `json:"permission_mode"`
	// SystemPrompt replaces the agent's whole system prompt
	// (--system-prompt).
	SystemPrompt string `json:"system_prompt"`
	// AppendSystemPrompt is appended to the system prompt
	// (--append-system-prompt), instead of the engine's SystemPrompt.
	AppendSystemPrompt string `json:"append_system_prompt"`
	// AllowedTools are the tools allowed without asking (instead of the
	// engine's list).
	AllowedTools []string `json:"allowed_tools"`
	// DisallowedTools are the tools removed from the agent (instead of the
	// engine's list).
	DisallowedTools []string `json:"disallowed_tools"`
	// AddDirs are extra directories the agent may use (--add-dir).
	AddDirs []string `json:"add_dirs"`
	// MaxTurns is the most agentic turns per prompt (--max-turns); past it
	// the turn fails with ErrTurnFailed, subtype "error_max_turns".
	MaxTurns int `json:"max_turns"`
	// MaxBudgetUSD is the most dollars per process (--max-budget-usd).
	MaxBudgetUSD float64 `json:"max_budget_usd"`
	// JSONSchema is a JSON Schema the answer must follow (--json-schema);
	// Turn.StructuredOutput carries the answer.
	JSONSchema map[string]any `json:"json_schema"`
	// FallbackModel is used when the main model is overloaded
	// (--fallback-model).
	FallbackModel string `json:"fallback_model"`
	// Effort is the reasoning effort (--effort: "low", "medium", "high").
	Effort string `json:"effort"`
	// Agents are subagent definitions by name (--agents).
	Agents map[string]any `json:"agents"`
	// Settings is a settings object, or the path of a settings file
	// (--settings).
	Settings any `json:"settings"`
	// SettingSources are the setting files that load (--setting-sources:
	// "user", "project", "local"); an empty non-nil list loads none.
	SettingSources []string `json:"setting_sources"`
	// MCPConfig is external MCP servers, {"mcpServers": {...}} as the CLI
	// reads it (--mcp-config); the engine's Tools are added.
	MCPConfig map[string]any `json:"mcp_config"`
	// PluginDirs are plugin directories (--plugin-dir).
	PluginDirs []string `json:"plugin_dirs"`
	// Env is extra environment for the agent, over the engine's Env.
	Env map[string]string `json:"env"`
	// ConfigDir is the agent's configuration directory
	// (CLAUDE_CONFIG_DIR, an absolute path): where its credentials,
	// settings and transcripts live. One per tenant keeps tenants apart.
	ConfigDir string `json:"config_dir"`
}

// MarshalJSON encodes the options in the core's wire form: only the fields
// set (a nil slice is unset, an empty one is not).
func (o SessionOptions) MarshalJSON() ([]byte, error) {
	return wire(o)
}

// SessionLimits are resource limits of every session's process tree (the
// agent and everything it starts; the core's SessionLimits). A zero field is
// no limit; a negative one is ErrInvalidConfig. With a per-session cgroup,
// memory and processes are limited for the whole tree (memory.max,
// pids.max); without one, memory becomes the agent's RLIMIT_AS and the
// process limit a best effort through RLIMIT_NPROC (per user, not enforced
// for root). CPU time and open files are per process.
type SessionLimits struct {
	// MemoryBytes is the most memory the session may use (cgroup
	// memory.max; else RLIMIT_AS, which counts reserved address space).
	MemoryBytes int64 `json:"memory_bytes"`
	// MaxProcesses is the most processes of the session at once (cgroup
	// pids.max: a fork past it fails).
	MaxProcesses int `json:"max_processes"`
	// CPUSeconds is the CPU time each process may use (RLIMIT_CPU).
	CPUSeconds int64 `json:"cpu_seconds"`
	// OpenFiles is the most files each process may hold open
	// (RLIMIT_NOFILE).
	OpenFiles int `json:"open_files"`
}

// MarshalJSON encodes the limits in the core's wire form: only the fields
// set.
func (l SessionLimits) MarshalJSON() ([]byte, error) {
	return wire(l)
}

// PrewarmProfile is one kind of spare process an engine keeps ready (the
// core's PrewarmProfile): Spares agent processes started in Workdir with
// the session options Session, idle. A session's first turn with that
// workdir and those options, when the session has no conversation to
// resume or fork, goes to a spare's running process instead of starting
// one. Spares count toward MaxSessions and are refilled in the background.
type PrewarmProfile struct {
	// Spares is how many to keep started; 0 removes the profile in
	// Engine.Prewarm.
	Spares int `json:"spares"`
	// Workdir is the sessions' workdir ("": the engine's DefaultWorkdir).
	Workdir string `json:"workdir"`
	// Session is the sessions' options (nil: none).
	Session *SessionOptions `json:"session"`
}

// MarshalJSON encodes the profile in the core's wire form: only the fields
// set.
func (p PrewarmProfile) MarshalJSON() ([]byte, error) {
	return wire(p)
}

// PlacementOptions place an engine's sessions across hosts (the core's
// PlacementOptions; EngineOptions.Placement). Engines on different hosts
// share one Store; each has its own Owner name.
type PlacementOptions struct {
	// Owner is this engine's name among the owners (a replica, pod or host
	// name; unique among the engines sharing the store, no spaces).
	Owner string `json:"owner"`
	// Store is where leases and transcripts live, reached by every host: a
	// directory (a shared volume), or a Redis server's URL
	// (redis://[:password@]host[:port][/db], or redis+unix:///path.sock);
	// rediss:// is refused (TLS is not built in).
	Store string `json:"store"`
	// LeaseTTL is how long a lease lasts unless renewed (the engine renews
	// its leases every third of it); a host silent for longer loses its
	// sessions to the next host asked for them. Zero: 15 s.
	LeaseTTL time.Duration `json:"lease_ttl"`
}

// MarshalJSON encodes the options in the core's wire form: only the fields
// set, LeaseTTL in seconds.
func (p PlacementOptions) MarshalJSON() ([]byte, error) {
	return wire(p)
}

// ImageInput is an image sent with a turn's prompt.
type ImageInput struct {
	// MediaType is "image/png", "image/jpeg", "image/gif" or "image/webp".
	MediaType string `json:"media_type"`
	// Data is the image's bytes (base64-encoded on the wire).
	Data []byte `json:"data"`
}

// wire encodes an options struct as the core's JSON form: every field with
// a json tag and a non-zero value, durations as float seconds.
func wire(opts any) ([]byte, error) {
	return json.Marshal(wireMap(opts))
}

// wireMap is wire's object before encoding.
func wireMap(opts any) map[string]any {
	v := reflect.ValueOf(opts)
	m := map[string]any{}
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		switch {
		case name == "" || name == "-" || f.IsZero():
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			m[name] = time.Duration(f.Int()).Seconds()
		default:
			m[name] = f.Interface()
		}
	}
	return m
}

// Event is one event of a turn. Type is the seed's name: "session_start",
// "thinking", "answer", "answer_delta", "thinking_delta",
// "tool_input_delta", "tool_use", "tool_result", "permission_request",
// "danger_block", "session_stats", "error", "ask_user_question",
// "exit_plan_mode" or "plan_mode"; Data holds its fields (the schema's
// Event). Stream ends a turn that succeeded with one more, of
// Type EventTurn, whose Turn is the turn.
type Event struct {
	// Type is the event's name.
	Type string
	// Data is the event's fields, without "type".
	Data map[string]any
	// Turn is the finished turn, set only on Stream's last event (Type
	// EventTurn).
	Turn *Turn
}

// UnmarshalJSON decodes an event object ({"type": ..., fields...}).
func (e *Event) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &e.Data); err != nil {
		return err
	}
	e.Type, _ = e.Data["type"].(string)
	delete(e.Data, "type")
	return nil
}

// The records of a turn and of a session (Turn, Usage, ToolCall,
// SessionInfo, SessionStats) are generated from the schema: contract_gen.go.

// Engine is the session pool: one hot agent process per session id, each
// contained, every tool call screened by the WAF. Safe for concurrent use.
type Engine struct {
	mu       sync.RWMutex
	e        *C.hotplex_engine // nil once closed
	host     *host             // CanUseTool, the hooks and the tools
	handle   cgo.Handle        // host's handle, or 0
	observer cgo.Handle        // the observer feed's handle, or 0
	feed     *observerFeed     // nil without an Observer
	final    *finalMetrics     // the metrics as Close left them
}

// NewEngine starts an engine. It fails with ErrInvalidConfig for a bad
// option, including an agent binary that cannot be found.
func NewEngine(opts EngineOptions) (*Engine, error) {
	h, hooks, tools, err := newHost(opts)
	if err != nil {
		return nil, err
	}
	m := wireMap(opts)
	delete(m, "hooks")
	delete(m, "tools")
	if len(hooks) > 0 {
		m["hooks"] = hooks
	}
	if len(tools) > 0 {
		m["tools"] = tools
	}
	js, err := json.Marshal(m)
	if err != nil {
		h.cancel()
		return nil, err
	}
	return newEngine(string(js), h, opts.Observer)
}

// newEngine starts an engine from the options' JSON text, its callbacks
// those of h (nil: none).
func newEngine(options string, h *host, observer func(LifecycleRecord)) (*Engine, error) {
	e := &Engine{host: h}
	uses := 0
	if h != nil {
		permission, hooks, tools := h.needed()
		for bit, on := range []bool{permission, hooks, tools} {
			if on {
				uses |= 1 << bit
			}
		}
		if uses != 0 {
			e.handle = cgo.NewHandle(h)
		}
	}
	if observer != nil {
		e.feed = startObserver(observer)
		e.observer = cgo.NewHandle(e.feed)
	}
	p, n := cString(options)
	if err := call(func() C.hotplex_status {
		return C.hotplex_status(C.hotplex_go_engine_new(p, n, C.uintptr_t(e.handle), C.int(uses), C.uintptr_t(e.observer), &e.e))
	}); err != nil {
		e.release()
		return nil, err
	}
	return e, nil
}

// release lets go of the Go side of the callbacks, once the library calls
// none of them any more (after hotplex_engine_free, or a failed start).
func (e *Engine) release() {
	if e.host != nil {
		e.host.cancel()
	}
	if e.handle != 0 {
		e.handle.Delete()
		e.handle = 0
	}
	if e.observer != 0 {
		e.observer.Delete()
		e.observer = 0
	}
	if e.feed != nil {
		// The goroutine delivers what it holds, then ends.
		close(e.feed.records)
		e.feed = nil
	}
}

// jsonString copies a C string owned by hotplex and frees it.
func jsonString(p *C.char) []byte {
	defer C.hotplex_string_free(p)
	return []byte(C.GoString(p))
}

// Execute runs one turn on session sessionID (started or resumed on first
// use) and returns it. Cancelling ctx cancels the turn (the agent is
// interrupted; the session stays usable) and returns ctx.Err(). Failures
// are *Error values matching ErrDangerBlocked, ErrTurnTimeout,
// ErrSessionDead, ErrTurnFailed, ErrCapacityExceeded, ErrStartFailed,
// ErrInvalidConfig or ErrEngineClosed. A prompt the WAF blocks is a
// "danger_block" event for OnEvent, then ErrDangerBlocked. See Stream for
// the same turn as a sequence to range over.
func (e *Engine) Execute(ctx context.Context, sessionID, prompt string, opts *TurnOptions) (*Turn, error) {
	var onEvent func(Event)
	if opts != nil {
		onEvent = opts.OnEvent
	}
	return e.run(ctx, sessionID, prompt, opts, func(ev Event) bool {
		if onEvent != nil {
			onEvent(ev)
		}
		return true
	})
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
	var existed C.bool
	ip, in := cString(sessionID)
	err := e.use(func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_stop_session(e.e, ip, in, &existed))
		})
	})
	return bool(existed), err
}

// Close stops every session, waits until every process tree is gone and
// releases the engine. Running turns fail with ErrEngineClosed. Idempotent.
func (e *Engine) Close() error {
	// Hooks and tools still running see their ctx end: closing waits for
	// them to return.
	if e.host != nil {
		e.host.cancel()
	}
	// Concurrent turns see Closed at once; freeing waits for them to leave
	// the engine (they keep only their own streams).
	_ = e.use(func() error {
		return call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_engine_close(e.e)) })
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.e != nil {
		// Kept for a last scrape: the counters of a closed engine stay.
		e.final = readFinalMetrics(e.e)
		// Freeing a closed engine hands the observer what was queued; once
		// it returns, no callback runs any more.
		C.hotplex_engine_free(e.e)
		e.e = nil
		e.release()
	}
	return nil
}

// use runs fn with the engine held open, or returns ErrEngineClosed.
func (e *Engine) use(fn func() error) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.e == nil {
		return ErrEngineClosed
	}
	return fn()
}

func (e *Engine) withJSON(fn func(**C.char) C.hotplex_status, into any) error {
	var p *C.char
	if err := e.use(func() error { return call(func() C.hotplex_status { return fn(&p) }) }); err != nil {
		return err
	}
	return json.Unmarshal(jsonString(p), into)
}
