package hotplex_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// turnText runs a turn and returns its text, failing the test on an error.
func turnText(t *testing.T, e *hotplex.Engine, id, prompt string, opts *hotplex.TurnOptions) string {
	t.Helper()
	turn, err := e.Execute(context.Background(), id, prompt, opts)
	if err != nil {
		t.Fatalf("%s on %s: %v", prompt, id, err)
	}
	return turn.Text
}

func TestAGoPostToolUseHookSeesTheOutputAndItsContextReachesTheAnswer(t *testing.T) {
	var mu sync.Mutex
	var seen []hotplex.HookInput
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Hooks = map[string][]hotplex.HookMatcher{
			hotplex.HookPostToolUse: {{Matcher: "Bash", Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					mu.Lock()
					seen = append(seen, in)
					mu.Unlock()
					return map[string]any{"hookSpecificOutput": map[string]any{
						"hookEventName":     "PostToolUse",
						"additionalContext": "checked by Go",
					}}, nil
				},
			}}},
		}
	})
	if got := turnText(t, e, "h", "tool:ls", nil); got != "tool ran: ls [context: checked by Go]" {
		t.Fatalf("answer: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("hook calls: %d", len(seen))
	}
	in := seen[0]
	if in.SessionID != "h" || in.Event != hotplex.HookPostToolUse || in.ToolName != "Bash" ||
		in.ToolInput["command"] != "ls" || in.ToolUseID == "" || !strings.Contains(fmt.Sprint(in.ToolResponse), "ran: ls") {
		t.Fatalf("hook input: %+v", in)
	}
}

func TestAGoPreToolUseHookRewritesTheCommandAndTheWAFScreensTheRewrite(t *testing.T) {
	var calls atomic.Int32
	var rewrite atomic.Value
	rewrite.Store("make check")
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Hooks = map[string][]hotplex.HookMatcher{
			hotplex.HookPreToolUse: {{Matcher: "Bash", Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					calls.Add(1)
					return map[string]any{"hookSpecificOutput": map[string]any{
						"hookEventName": "PreToolUse",
						"updatedInput":  map[string]any{"command": rewrite.Load()},
					}}, nil
				},
			}}},
		}
	})
	if got := turnText(t, e, "h", "tool:ls", nil); got != "tool ran: make check" {
		t.Fatalf("rewritten: %q", got)
	}
	// A rewrite into a dangerous command is blocked by the WAF.
	rewrite.Store("rm -rf ~")
	var blocked bool
	got := turnText(t, e, "h", "tool:ls", &hotplex.TurnOptions{OnEvent: func(ev hotplex.Event) {
		blocked = blocked || ev.Type == "danger_block"
	}})
	if !blocked || !strings.HasPrefix(got, "tool denied") {
		t.Fatalf("dangerous rewrite: %q, danger_block %v", got, blocked)
	}
	// A call the WAF blocks never reaches the hook.
	before := calls.Load()
	if got := turnText(t, e, "h", "tool:rm -rf /", nil); got != "tool denied: rm -rf /" || calls.Load() != before {
		t.Fatalf("blocked call: %q, hook calls %d -> %d", got, before, calls.Load())
	}
}

func TestAFailingGoPreToolUseHookDeniesTheCall(t *testing.T) {
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Hooks = map[string][]hotplex.HookMatcher{
			hotplex.HookPreToolUse: {{Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					return nil, errors.New("policy service down")
				},
			}}},
		}
	})
	got := turnText(t, e, "h", "tool:ls", nil)
	if !strings.HasPrefix(got, "tool denied: ls") {
		t.Fatalf("answer: %q", got)
	}
}

// getWeather is the host tool of the tests: sunny in Paris, unknown
// elsewhere.
func getWeather(ctx context.Context, args map[string]any) (any, error) {
	city, _ := args["city"].(string)
	if city != "Paris" {
		return nil, fmt.Errorf("no weather for %q", city)
	}
	return "sunny, 21°C in " + city, nil
}

func TestAGoToolIsListedCalledAndItsResultReachesTheAnswer(t *testing.T) {
	var sessions sync.Map
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Tools = []hotplex.ToolServer{{Name: "weather", Tools: []hotplex.Tool{{
			Name:        "get_weather",
			Description: "The weather in a city",
			InputSchema: map[string]any{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []string{"city"},
			},
			Func: func(ctx context.Context, args map[string]any) (any, error) {
				sessions.Store(args["city"], true)
				return getWeather(ctx, args)
			},
		}}}}
	})
	if got := turnText(t, e, "w", "tools?", nil); !strings.Contains(got, "mcp__weather__get_weather") {
		t.Fatalf("tools: %q", got)
	}
	if got := turnText(t, e, "w", `mcp:weather/get_weather {"city":"Paris"}`, nil); got != "tool said: sunny, 21°C in Paris" {
		t.Fatalf("answer: %q", got)
	}
	if _, ok := sessions.Load("Paris"); !ok {
		t.Fatal("the tool was not called with the model's arguments")
	}
	// An error is a result the model sees; the turn goes on.
	if got := turnText(t, e, "w", `mcp:weather/get_weather {"city":"Atlantis"}`, nil); got != `tool said: no weather for "Atlantis"` {
		t.Fatalf("failed tool: %q", got)
	}
	status, err := e.McpStatus(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(status["mcpServers"]), "weather") {
		t.Fatalf("mcp status: %v", status)
	}
}

func TestCanUseToolSeesTheAgentsContextAndGrantsUpdatedPermissions(t *testing.T) {
	var calls atomic.Int32
	var suggestions atomic.Value
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.CanUseTool = func(r hotplex.ToolRequest) any {
			calls.Add(1)
			suggestions.Store(r.Context["permission_suggestions"])
			if r.Context["tool_use_id"] == nil {
				return "no tool_use_id in the context"
			}
			return map[string]any{"behavior": "allow", "updatedPermissions": r.Context["permission_suggestions"]}
		}
	})
	if got := turnText(t, e, "p", "tool:ls", nil); got != "tool ran: ls" {
		t.Fatalf("first call: %q", got)
	}
	if s, _ := suggestions.Load().([]any); len(s) == 0 {
		t.Fatalf("no permission_suggestions: %v", suggestions.Load())
	}
	// The granted rule lets later calls of the tool run without asking.
	if got := turnText(t, e, "p", "tool:pwd", nil); got != "tool ran: pwd" || calls.Load() != 1 {
		t.Fatalf("second call: %q after %d permission calls", got, calls.Load())
	}
}

func TestLiveControlsChangeTheModelAndModeAndReportContextUsage(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	turnText(t, e, "c", "hello", nil)
	if err := e.SetModel(ctx, "c", "claude-test"); err != nil {
		t.Fatal(err)
	}
	if got := turnText(t, e, "c", "model?", nil); got != "model: claude-test" {
		t.Fatalf("model: %q", got)
	}
	if err := e.SetModel(ctx, "c", ""); err != nil {
		t.Fatal(err)
	}
	if got := turnText(t, e, "c", "model?", nil); got != "model: default" {
		t.Fatalf("default model: %q", got)
	}
	if err := e.SetPermissionMode(ctx, "c", "plan"); err != nil {
		t.Fatal(err)
	}
	if got := turnText(t, e, "c", "mode?", nil); got != "mode: plan" {
		t.Fatalf("mode: %q", got)
	}
	if err := e.SetPermissionMode(ctx, "c", ""); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Fatalf("empty mode: %v", err)
	}
	usage, err := e.ContextUsage(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if total, _ := usage["totalTokens"].(float64); total <= 0 || usage["maxTokens"] != 200000.0 {
		t.Fatalf("usage: %v", usage)
	}
	if ran, err := e.Interrupt(ctx, "c"); err != nil || ran {
		t.Fatalf("interrupt between turns: %v %v", ran, err)
	}
}

func TestInterruptEndsTheRunningTurnAndTheSessionStaysHot(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	first, err := e.Execute(ctx, "i", "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := e.Execute(ctx, "i", "stall:10000", &hotplex.TurnOptions{OnEvent: func(hotplex.Event) {
			once.Do(func() { close(started) })
		}})
		done <- err
	}()
	<-started
	ran, err := e.Interrupt(ctx, "i")
	if err != nil || !ran {
		t.Fatalf("interrupt: %v %v", ran, err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, hotplex.ErrTurnTimeout) {
			t.Fatalf("interrupted turn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the interrupted turn did not end")
	}
	next, err := e.Execute(ctx, "i", "again", nil)
	if err != nil || next.ColdStart || next.PID != first.PID {
		t.Fatalf("after the interrupt: %+v %v", next, err)
	}
}

func TestLiveControlErrorsMatchTheirSentinels(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	if _, err := e.Interrupt(ctx, "nope"); !errors.Is(err, hotplex.ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := e.ContextUsage(ctx, "nope"); !errors.Is(err, hotplex.ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.SetModel(cancelled, "nope", "m"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	// An agent without the live controls, as an older CLI.
	old := newEngine(t, func(o *hotplex.EngineOptions) { o.Args = []string{"--no-live-controls"} })
	turnText(t, old, "u", "hello", nil)
	if err := old.SetModel(ctx, "u", "m"); !errors.Is(err, hotplex.ErrUnsupported) {
		t.Fatalf("old agent: %v", err)
	}
	if _, err := old.McpStatus(ctx, "u"); !errors.Is(err, hotplex.ErrUnsupported) {
		t.Fatalf("old agent: %v", err)
	}
	_ = old.Close()
	if err := old.SetModel(ctx, "u", "m"); !errors.Is(err, hotplex.ErrEngineClosed) {
		t.Fatalf("closed engine: %v", err)
	}
}

func TestResetSessionForgetsAndForkSessionRemembersSeparately(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	turnText(t, e, "r", "remember me", nil)
	if err := e.ResetSession(ctx, "r", false); err != nil {
		t.Fatal(err)
	}
	if got := turnText(t, e, "r", "recall", nil); strings.Contains(got, "remember me") {
		t.Fatalf("after reset: %q", got)
	}
	turnText(t, e, "f", "alpha", nil)
	if err := e.ForkSession(ctx, "f", "f2"); err != nil {
		t.Fatal(err)
	}
	turnText(t, e, "f2", "beta", nil)
	if got := turnText(t, e, "f2", "recall", nil); got != "history: alpha | beta" {
		t.Fatalf("fork: %q", got)
	}
	if got := turnText(t, e, "f", "recall", nil); got != "history: alpha" {
		t.Fatalf("original: %q", got)
	}
	if err := e.ForkSession(ctx, "never-used", "x"); !errors.Is(err, hotplex.ErrSessionNotFound) {
		t.Fatalf("fork of nothing: %v", err)
	}
	if err := e.ForkSession(ctx, "f", "f2"); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Fatalf("fork into a live id: %v", err)
	}
}

func TestForkSessionAtAMessageLeavesOutTheTurnsAfterIt(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	one, err := e.Execute(ctx, "a", "one", nil)
	if err != nil {
		t.Fatal(err)
	}
	turnText(t, e, "a", "two", nil)
	if err := e.ForkSessionAt(ctx, "a", "b", one.MessageUuid); err != nil {
		t.Fatal(err)
	}
	if got := turnText(t, e, "b", "recall", nil); got != "history: one" {
		t.Fatalf("fork at one: %q", got)
	}
	if got := turnText(t, e, "a", "recall", nil); got != "history: one | two" {
		t.Fatalf("original: %q", got)
	}
	if err := e.ForkSessionAt(ctx, "a", "c", "not an id"); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Fatalf("bad fork point: %v", err)
	}
}

func TestSessionOptionsSetMaxTurnsAndAJSONSchemaForStructuredOutput(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	_, err := e.Execute(ctx, "o", "tools:3", &hotplex.TurnOptions{Session: &hotplex.SessionOptions{MaxTurns: 2}})
	var herr *hotplex.Error
	if !errors.Is(err, hotplex.ErrTurnFailed) || !errors.As(err, &herr) || !strings.Contains(string(herr.Detail), "error_max_turns") {
		t.Fatalf("max turns: %v", err)
	}
	turn, err := e.Execute(ctx, "o", `json:{"n":1}`, &hotplex.TurnOptions{Session: &hotplex.SessionOptions{
		MaxTurns:   2,
		JSONSchema: map[string]any{"type": "object"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := turn.StructuredOutput.(map[string]any); out["n"] != 1.0 {
		t.Fatalf("structured output: %#v", turn.StructuredOutput)
	}
	png := []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}
	got := turnText(t, e, "o", "images?", &hotplex.TurnOptions{Images: []hotplex.ImageInput{{MediaType: "image/png", Data: png}}})
	if got != "images: 1" {
		t.Fatalf("images: %q", got)
	}
	if _, err := e.Execute(ctx, "o", "x", &hotplex.TurnOptions{Session: &hotplex.SessionOptions{ConfigDir: "relative"}}); !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("relative config dir: %v", err)
	}
}

func TestAPanickingGoPostToolUseHookIsReportedAndTheTurnGoesOn(t *testing.T) {
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Hooks = map[string][]hotplex.HookMatcher{
			hotplex.HookPostToolUse: {{Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					panic("hook bug")
				},
			}}},
		}
	})
	var errorEvents []string
	got := turnText(t, e, "h", "tool:ls", &hotplex.TurnOptions{OnEvent: func(ev hotplex.Event) {
		if ev.Type == "error" {
			errorEvents = append(errorEvents, fmt.Sprint(ev.Data["message"]))
		}
	}})
	if got != "tool ran: ls" || len(errorEvents) != 1 || !strings.Contains(errorEvents[0], "hook bug") {
		t.Fatalf("answer %q, error events %q", got, errorEvents)
	}
}

func TestASlowGoHookSeesItsContextEndAtItsTimeout(t *testing.T) {
	ended := make(chan error, 1)
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Hooks = map[string][]hotplex.HookMatcher{
			hotplex.HookPreToolUse: {{Timeout: 300 * time.Millisecond, Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					<-ctx.Done()
					ended <- ctx.Err()
					return nil, ctx.Err()
				},
			}}},
		}
	})
	if got := turnText(t, e, "h", "tool:ls", nil); !strings.HasPrefix(got, "tool denied: ls") {
		t.Fatalf("answer: %q", got)
	}
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hook ctx: %v", err)
	}
}

// spares is the number of ready spares now (hotplex_spares{status="ready"}).
func spares(t *testing.T, e *hotplex.Engine) float64 {
	t.Helper()
	families, err := e.MetricsSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.Samples {
			if f.Name == "hotplex_spares" && s.Labels["status"] == "ready" {
				return s.Value
			}
		}
	}
	t.Fatal("no hotplex_spares family")
	return 0
}

func TestPrewarmKeepsSparesWhoseProcessAnswersANewConversation(t *testing.T) {
	session := &hotplex.SessionOptions{Model: "m"}
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Prewarm = []hotplex.PrewarmProfile{{Spares: 1, Session: session}}
	})
	ctx := context.Background()
	waitFor(t, "one spare", func() bool { return spares(t, e) == 1 })
	turn, err := e.Execute(ctx, "s", "model?", &hotplex.TurnOptions{Session: session})
	if err != nil {
		t.Fatal(err)
	}
	if turn.Text != "model: m" || turn.ColdStart {
		t.Fatalf("the spare's process answers: %+v", turn)
	}
	waitFor(t, "a refill", func() bool { return spares(t, e) == 1 })
	other := hotplex.PrewarmProfile{Spares: 2, Workdir: filepath.Join(t.TempDir(), "other")}
	if err := e.Prewarm(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three spares", func() bool { return spares(t, e) == 3 })
	other.Spares = 0
	if err := e.Prewarm(ctx, other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one spare again", func() bool { return spares(t, e) == 1 })
	bad := hotplex.PrewarmProfile{Spares: 1, Session: &hotplex.SessionOptions{MaxTurns: -1}}
	if err := e.Prewarm(ctx, bad); !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("bad options: %v", err)
	}
}
