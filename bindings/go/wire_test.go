package hotplex

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionsGoOutAsTheCoreWireForm(t *testing.T) {
	js, err := wire(EngineOptions{
		Binary:      "agent",
		TurnTimeout: 1500 * time.Millisecond,
		EnvAllow:    []string{},
		CanUseTool:  func(ToolRequest) any { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"binary":"agent","env_allow":[],"turn_timeout":1.5}`; string(js) != want {
		t.Fatalf("got %s, want %s", js, want)
	}
	js, err = wire(EngineOptions{Limits: &SessionLimits{MaxProcesses: 64, MemoryBytes: 8 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"limits":{"max_processes":64,"memory_bytes":8589934592}}`; string(js) != want {
		t.Fatalf("limits: got %s, want %s", js, want)
	}
	if js, _ := wire(TurnOptions{OnEvent: func(Event) {}}); string(js) != "{}" {
		t.Fatalf("zero turn options: %s", js)
	}
}

// Session options send only what is set (an empty list is set: "load no
// setting files"), images their bytes as base64.
func TestSessionOptionsAndImagesGoOutAsTheCoreWireForm(t *testing.T) {
	js, err := wire(TurnOptions{
		Session: &SessionOptions{MaxTurns: 2, SettingSources: []string{}},
		Images:  []ImageInput{{MediaType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"images":[{"media_type":"image/png","data":"iVBORw=="}],"session":{"max_turns":2,"setting_sources":[]}}`
	if string(js) != want {
		t.Fatalf("got %s, want %s", js, want)
	}
}

// Hooks get ids of their own, one per function, in a stable order; the
// functions stay on the Go side.
func TestHooksAndToolsBecomeSpecsWithoutTheirFunctions(t *testing.T) {
	hook := func(context.Context, HookInput) (map[string]any, error) { return nil, nil }
	tool := func(context.Context, map[string]any) (any, error) { return "x", nil }
	h, hooks, tools, err := newHost(EngineOptions{
		Hooks: map[string][]HookMatcher{
			HookPostToolUse: {{Matcher: "Bash", Hooks: []HookFunc{hook, hook}, Timeout: 1500 * time.Millisecond}},
			HookStop:        {{Hooks: []HookFunc{hook}}},
		},
		Tools: []ToolServer{{Name: "host", Tools: []Tool{{Name: "t", Func: tool}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.cancel()
	js, _ := json.Marshal(map[string]any{"hooks": hooks, "tools": tools})
	want := `{"hooks":[{"event":"PostToolUse","matcher":"Bash","id":"go-1","timeout":1.5},` +
		`{"event":"PostToolUse","matcher":"Bash","id":"go-2","timeout":1.5},` +
		`{"event":"Stop","matcher":null,"id":"go-3"}],` +
		`"tools":[{"name":"host","tools":[{"name":"t","description":""}]}]}`
	if string(js) != want {
		t.Fatalf("got %s\nwant %s", js, want)
	}
	if _, _, _, err := newHost(EngineOptions{Tools: []ToolServer{{Name: "host", Tools: []Tool{{Name: "t"}}}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a tool without Func: %v", err)
	}
}

// Values Go's types cannot express still fail in the core, naming the option.
func TestOptionsTheTypesCannotExpressAreRejectedByName(t *testing.T) {
	for text, want := range map[string]string{
		`{"env":{"A":1}}`:    "env.A",
		`{"bogus":1}`:        "bogus",
		`{"max_sessions":0}`: "max_sessions",
	} {
		e, err := newEngine(text, nil, nil)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), want) || e != nil {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming %s", text, err, want)
		}
	}
}
