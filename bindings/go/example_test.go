package hotplex_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// Screen commands before an agent runs them.
func Example() {
	d, err := hotplex.NewDetector()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	for _, cmd := range []string{"rm -rf /", "ls -la"} {
		v, err := d.CheckCommand(cmd)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-8s blocked=%v level=%v category=%q\n", cmd, v.Blocked, v.Level, v.Category)
	}
	// Output:
	// rm -rf / blocked=true level=critical category="file_delete"
	// ls -la   blocked=false level=safe category=""
}

// Custom rules and an audit hook.
func ExampleNewDetector() {
	d, err := hotplex.NewDetector(
		hotplex.WithRules(`deploy\s+--prod|Deploys to production|high|system`),
		hotplex.WithAudit(func(ev hotplex.AuditEvent) {
			fmt.Printf("audit: %s %q -> %v\n", ev.Kind, ev.Input, ev.Verdict.Level)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	v, err := d.CheckCommand("deploy --prod")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blocked:", v.Blocked)
	// Output:
	// audit: command "deploy --prod" -> high
	// blocked: true
}

// Host hooks: a PostToolUse hook that adds context for the model after
// every Bash call, and a PreToolUse hook that rewrites a command (the WAF
// screens the rewrite too).
func ExampleEngineOptions_hooks() {
	e, err := hotplex.NewEngine(hotplex.EngineOptions{
		Hooks: map[string][]hotplex.HookMatcher{
			hotplex.HookPostToolUse: {{Matcher: "Bash", Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					return map[string]any{"hookSpecificOutput": map[string]any{
						"hookEventName":     "PostToolUse",
						"additionalContext": fmt.Sprintf("%v was logged", in.ToolInput["command"]),
					}}, nil
				},
			}}},
			hotplex.HookPreToolUse: {{Matcher: "Bash", Timeout: 5 * time.Second, Hooks: []hotplex.HookFunc{
				func(ctx context.Context, in hotplex.HookInput) (map[string]any, error) {
					if in.ToolInput["command"] != "make" {
						return nil, nil // nothing to say
					}
					return map[string]any{"hookSpecificOutput": map[string]any{
						"hookEventName": "PreToolUse",
						"updatedInput":  map[string]any{"command": "make -j4"},
					}}, nil
				},
			}}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
}

// A host-defined tool: the model sees it as mcp__weather__get_weather and
// its result as the tool's output.
func ExampleTool() {
	e, err := hotplex.NewEngine(hotplex.EngineOptions{
		Tools: []hotplex.ToolServer{{Name: "weather", Tools: []hotplex.Tool{{
			Name:        "get_weather",
			Description: "The current weather in a city",
			InputSchema: map[string]any{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []string{"city"},
			},
			Func: func(ctx context.Context, args map[string]any) (any, error) {
				return fmt.Sprintf("sunny in %v", args["city"]), nil
			},
		}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
}

// Live controls on a session's running agent, between turns or during one;
// reset and fork of its conversation.
func ExampleEngine_SetModel() {
	e, err := hotplex.NewEngine(hotplex.EngineOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if _, err := e.Execute(ctx, "chat-42", "hello", nil); err != nil {
		log.Fatal(err)
	}
	if err := e.SetModel(ctx, "chat-42", "claude-sonnet-4-5"); errors.Is(err, hotplex.ErrUnsupported) {
		log.Print("this CLI version cannot switch models live")
	}
	_ = e.SetPermissionMode(ctx, "chat-42", "plan")
	usage, _ := e.ContextUsage(ctx, "chat-42")
	fmt.Println("context tokens:", usage["totalTokens"])
	_, _ = e.Interrupt(ctx, "chat-42")           // stops a running turn, if any
	_ = e.ForkSession(ctx, "chat-42", "chat-43") // chat-43 continues a copy
	_ = e.ResetSession(ctx, "chat-42", false)    // chat-42 starts over
}
