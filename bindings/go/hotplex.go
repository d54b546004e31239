// Package hotplex is the Go binding of hotplex: a session pool that keeps AI
// coding agents hot (Engine), and the command WAF that screens the shell
// commands, prompts and tool calls of those agents before they run.
//
// It wraps the C ABI (include/hotplex.h) with cgo and links the static
// library libhotplex.a. A release of this module carries both, built for
// linux/amd64, so `go get` needs only a C toolchain. In the source tree,
// build the library first, from the repository root:
//
//	cargo build -p hotplex-ffi --release
//
// (link.go says where cgo looks; -tags hotplex_system links an installed
// C release through pkg-config instead.)
//
// Then:
//
//	d, err := hotplex.NewDetector()
//	if err != nil { ... }
//	defer d.Close()
//	v, err := d.CheckCommand("rm -rf /")
//	if err != nil { ... }
//	if v.Blocked { ... } // v.Level == hotplex.LevelCritical
//
// Detector.Explain shows how a command is judged (canonical texts, every rule
// that matched, the verdict) as an *Explanation, for debugging rules.
//
// The go command does not track include/hotplex.h (it is outside this
// package): after the header changes, run `go clean -cache` or build with
// tests/run-c-go.sh, which keys the build on the header's hash. The static
// library is re-read at every link.
//
// Engine is the session pool: one long-lived ("hot") agent process per
// session id (Claude Code by default), turns run one at a time per session,
// every process tree contained, every tool call screened by the WAF:
//
//	e, err := hotplex.NewEngine(hotplex.EngineOptions{StateDir: "/var/lib/app/hotplex"})
//	if err != nil { ... }
//	defer e.Close()
//	turn, err := e.Execute(ctx, "chat-42", "fix the test", &hotplex.TurnOptions{Workdir: "/srv/app"})
//	if errors.Is(err, hotplex.ErrTurnTimeout) { ... }
//	fmt.Println(turn.Text, turn.ColdStart, turn.DurationMs)
//
// The agent's control surface, as the Claude Agent SDK offers it:
//
//   - Host hooks (EngineOptions.Hooks): Go functions the agent calls at its
//     hook events, by event and tool matcher. The WAF answers first; a hook
//     returns the SDK's output keys ("hookSpecificOutput" with
//     "additionalContext", "updatedInput", "permissionDecision", ...).
//   - Host tools (EngineOptions.Tools): Go functions served as in-process MCP
//     servers; the model sees mcp__<server>__<tool>.
//   - Permissions (EngineOptions.CanUseTool) see the agent's context
//     (ToolRequest.Context: permission_suggestions, ...) and may answer with
//     "updatedInput", "updatedPermissions" or "interrupt".
//   - Live controls on a running session: Engine.Interrupt, SetModel,
//     SetPermissionMode, ContextUsage and McpStatus (ErrSessionNotFound,
//     ErrUnsupported for an agent without them, ErrControlFailed); and its
//     conversation: Engine.ResetSession (start over) and ForkSession (a new
//     id continues a copy).
//   - The agent's questions and plans: an "ask_user_question" or
//     "exit_plan_mode" event waits, without the turn's timeout, until the host
//     answers with Engine.AnswerQuestion or ApprovePlan (from any goroutine,
//     minutes later; EngineOptions.QuestionTimeout bounds the wait), or
//     CanUseTool answers it (ErrQuestionNotFound, ErrInvalidAnswer,
//     ErrQuestionTimeout).
//   - Per session and per turn: TurnOptions.Session (SessionOptions: model,
//     permission mode, system prompts, tools, MaxTurns, JSONSchema for
//     Turn.StructuredOutput, ConfigDir, ...), TurnOptions.Instructions and
//     TurnOptions.Images.
//
// For example:
//
//	e, err := hotplex.NewEngine(hotplex.EngineOptions{
//		Hooks: map[string][]hotplex.HookMatcher{
//			hotplex.HookPostToolUse: {{Matcher: "Bash", Hooks: []hotplex.HookFunc{audit}}},
//		},
//		Tools: []hotplex.ToolServer{{Name: "weather", Tools: []hotplex.Tool{{
//			Name: "get_weather", InputSchema: citySchema, Func: getWeather,
//		}}}},
//	})
//	...
//	err = e.SetModel(ctx, "chat-42", "claude-sonnet-4-5")
//	usage, err := e.ContextUsage(ctx, "chat-42") // usage["totalTokens"]
//	err = e.ForkSession(ctx, "chat-42", "chat-43")
//
// See the examples of EngineOptions (hooks), Tool and Engine.SetModel.
//
// Telemetry: Engine.MetricsText returns the engine's Prometheus metrics as
// OpenMetrics text (Engine.MetricsSnapshot as values; the separate module
// bindings/go/promcollector registers them with client_golang),
// EngineOptions.Observer receives typed LifecycleRecords off the turns'
// path, and SetLogHandler bridges hotplex's logs to a slog.Handler:
//
//	_ = hotplex.SetLogHandler(slog.Default().Handler(), slog.LevelInfo)
//	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
//		text, _ := e.MetricsText()
//		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
//		io.WriteString(w, text)
//	})
//
// Placement across hosts: with EngineOptions.Placement, engines on several
// hosts share a store (a directory, or a Redis server's URL such as
// "redis://10.0.0.5:6379"), a session's turns belong to the engine
// holding its lease, and its conversation moves with it. A turn on a
// session another host holds fails with ErrOwnedElsewhere (Error.Detail
// names the owner); Engine.Owns, Adopt, Release, Drain and Load serve a
// balancer:
//
//	e, err := hotplex.NewEngine(hotplex.EngineOptions{
//		Placement: &hotplex.PlacementOptions{Owner: "replica-3", Store: "/shared/hotplex"},
//	})
//	if ok, _ := e.Owns("chat-42"); !ok {
//		err = e.Adopt(ctx, "chat-42", "") // or forward the turn to the owner
//	}
//	moved, err := e.Drain(ctx, 30*time.Second) // on shutdown: other hosts take these up
//
// A Detector is safe for concurrent use by many goroutines. Errors are
// *Error values (or ErrClosed) that match the sentinels ErrInvalidArgument,
// ErrUTF8, ErrInvalidRule and ErrPanic with errors.Is (an Engine's also
// ErrTurnTimeout, ErrSessionNotFound, ErrUnsupported, ErrControlFailed,
// ... one per status of the C ABI).
package hotplex

/*
#include <stdint.h>
#include <stdlib.h>
#include "hotplex.h"

// Implemented in Go (audit.go).
extern void hotplexGoAudit(uintptr_t handle, hotplex_check_kind kind, char *input,
                           size_t input_len, hotplex_verdict *verdict);

// Forwards audit events to Go; user_data carries a runtime/cgo.Handle.
static void hotplex_go_audit_trampoline(void *user_data, hotplex_check_kind kind,
                                        const char *input, size_t input_len,
                                        const hotplex_verdict *verdict) {
    hotplexGoAudit((uintptr_t)user_data, kind, (char *)input, input_len,
                   (hotplex_verdict *)verdict);
}

static hotplex_status hotplex_go_set_audit(hotplex_detector_builder *b, uintptr_t handle) {
    return hotplex_detector_builder_set_audit_callback(b, hotplex_go_audit_trampoline,
                                                       (void *)handle);
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Version returns the version of the linked hotplex library, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.hotplex_version())
}

// ABIVersion returns the C ABI version of the linked library. It equals the
// HOTPLEX_ABI_VERSION of the header this package was compiled against.
func ABIVersion() uint32 {
	return uint32(C.hotplex_abi_version())
}

// SupervisorMode reports how this process starts each session's supervisor:
// "exec" (the small program embedded in the library, which holds none of the
// host's memory) or "fork" (a copy of the host: where the program is
// unavailable, or with HOTPLEX_SUPERVISOR=fork in the environment).
func SupervisorMode() string {
	return C.GoString(C.hotplex_supervisor_mode())
}

// SessionCeiling returns the most sessions this process's open-files limit
// allows. Like NewEngine, it first raises the soft RLIMIT_NOFILE to the hard
// limit (once per process).
func SessionCeiling() uint64 {
	return uint64(C.hotplex_session_ceiling())
}

// Option configures NewDetector.
type Option func(*config)

type config struct {
	builtins   bool
	rules      []string
	allowPaths []string
	audit      func(AuditEvent)
}

// WithRules adds custom rules from the text of a rule file, in either of
// hotplex's formats: one "pattern|description|level|category[|danger|safe]"
// per line ("#" starts a comment), or a JSON array of rule objects. A bad rule
// makes NewDetector fail with an error matching ErrInvalidRule whose message
// names the line. May be given more than once.
func WithRules(text string) Option {
	return func(c *config) { c.rules = append(c.rules, text) }
}

// WithAllowPaths adds absolute paths that file tools may touch even where a
// rule would object (paths under them are allowed too). A relative path makes
// NewDetector fail with ErrInvalidArgument.
func WithAllowPaths(paths ...string) Option {
	return func(c *config) { c.allowPaths = append(c.allowPaths, paths...) }
}

// WithoutBuiltinRules turns the built-in rules off, leaving only the rules
// given with WithRules.
func WithoutBuiltinRules() Option {
	return func(c *config) { c.builtins = false }
}

// WithAudit sets a function that receives every verdict that is not safe,
// synchronously, on the goroutine that made the check, before the check
// returns. When the detector is shared it is called concurrently, so it must
// be safe for concurrent use. It must not call methods of the detector it
// belongs to. A panic inside it is recovered and ignored.
func WithAudit(fn func(AuditEvent)) Option {
	return func(c *config) { c.audit = fn }
}

// Detector is a command WAF. Create one with NewDetector and release it with
// Close. It is safe for concurrent use by multiple goroutines.
type Detector struct {
	mu     sync.RWMutex
	ptr    *C.hotplex_detector // nil once closed
	handle cgo.Handle          // the audit function's handle, or 0
}

// NewDetector builds a detector: the built-in rules plus whatever the options
// add.
func NewDetector(opts ...Option) (*Detector, error) {
	cfg := config{builtins: true}
	for _, opt := range opts {
		opt(&cfg)
	}

	var b *C.hotplex_detector_builder
	if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_detector_builder_new(&b)) }); err != nil {
		return nil, err
	}
	defer C.hotplex_detector_builder_free(b)

	if err := call(func() C.hotplex_status {
		return C.hotplex_status(C.hotplex_detector_builder_set_builtin_rules(b, C.bool(cfg.builtins)))
	}); err != nil {
		return nil, err
	}
	for _, text := range cfg.rules {
		ptr, n := cString(text)
		if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_detector_builder_add_rules(b, ptr, n)) }); err != nil {
			return nil, err
		}
		runtime.KeepAlive(text)
	}
	for _, path := range cfg.allowPaths {
		ptr, n := cString(path)
		if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_detector_builder_add_allow_path(b, ptr, n)) }); err != nil {
			return nil, err
		}
		runtime.KeepAlive(path)
	}

	d := &Detector{}
	if cfg.audit != nil {
		d.handle = cgo.NewHandle(cfg.audit)
		if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_go_set_audit(b, C.uintptr_t(d.handle))) }); err != nil {
			d.handle.Delete()
			return nil, err
		}
	}
	if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_detector_builder_build(b, &d.ptr)) }); err != nil {
		if d.handle != 0 {
			d.handle.Delete()
		}
		return nil, err
	}
	// A safety net only: call Close.
	runtime.SetFinalizer(d, (*Detector).Close)
	return d, nil
}

// Close releases the detector. It waits for checks in progress, is
// idempotent and always returns nil; checks after Close return ErrClosed.
func (d *Detector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ptr == nil {
		return nil
	}
	C.hotplex_detector_free(d.ptr)
	d.ptr = nil
	if d.handle != 0 {
		d.handle.Delete()
		d.handle = 0
	}
	runtime.SetFinalizer(d, nil)
	return nil
}

// CheckCommand screens a shell command line, as an agent's Bash tool would run
// it. Do not run the command when the verdict is Blocked.
func (d *Detector) CheckCommand(cmd string) (*Verdict, error) {
	ptr, n := cString(cmd)
	v, err := d.check(func(det *C.hotplex_detector, out **C.hotplex_verdict) C.hotplex_status {
		return C.hotplex_status(C.hotplex_detector_check_command(det, ptr, n, out))
	})
	runtime.KeepAlive(cmd)
	return v, err
}

// CheckPrompt screens a natural-language prompt: prose never blocks, but code
// in it and dangerous requests do.
func (d *Detector) CheckPrompt(prompt string) (*Verdict, error) {
	ptr, n := cString(prompt)
	v, err := d.check(func(det *C.hotplex_detector, out **C.hotplex_verdict) C.hotplex_status {
		return C.hotplex_status(C.hotplex_detector_check_prompt(det, ptr, n, out))
	})
	runtime.KeepAlive(prompt)
	return v, err
}

// CheckTool screens a Claude Code tool call: name is the tool name ("Bash",
// "Write", "Edit", "Read", ...) and input its input object. A string,
// []byte or json.RawMessage input is taken as JSON text; anything else is
// encoded with json.Marshal. Input that is not a JSON object is
// ErrInvalidArgument.
func (d *Detector) CheckTool(name string, input any) (*Verdict, error) {
	var text string
	switch in := input.(type) {
	case string:
		text = in
	case []byte:
		text = string(in)
	case json.RawMessage:
		text = string(in)
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("hotplex: encoding tool input: %w", err)
		}
		text = string(b)
	}
	namePtr, nameLen := cString(name)
	jsonPtr, jsonLen := cString(text)
	v, err := d.check(func(det *C.hotplex_detector, out **C.hotplex_verdict) C.hotplex_status {
		return C.hotplex_status(C.hotplex_detector_check_tool(det, namePtr, nameLen, jsonPtr, jsonLen, out))
	})
	runtime.KeepAlive(name)
	runtime.KeepAlive(text)
	return v, err
}

// check runs one check function under the read lock and converts its verdict.
func (d *Detector) check(fn func(*C.hotplex_detector, **C.hotplex_verdict) C.hotplex_status) (*Verdict, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.ptr == nil {
		return nil, ErrClosed
	}
	var out *C.hotplex_verdict
	if err := call(func() C.hotplex_status { return fn(d.ptr, &out) }); err != nil {
		return nil, err
	}
	defer C.hotplex_verdict_free(out)
	return convertVerdict(out), nil
}

// cString returns a pointer to s's bytes and their length, for a C call that
// reads them only during the call (no copy, no NUL needed). The caller keeps
// s alive until the call returns. An empty string is (NULL, 0).
func cString(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// call runs a status-returning C function and turns a failure into an *Error.
// The goroutine stays on one OS thread meanwhile, because the error message
// is kept per thread by the C library.
func call(fn func() C.hotplex_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := fn()
	if status == C.HOTPLEX_STATUS_OK {
		return nil
	}
	msg := ""
	if p := C.hotplex_last_error_message(); p != nil {
		msg = C.GoString(p)
	}
	var detail json.RawMessage
	if p := C.hotplex_last_error_detail(); p != nil {
		detail = json.RawMessage(C.GoString(p))
	}
	return &Error{Status: Status(status), Message: msg, Detail: detail}
}
