package hotplex

import (
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
	if js, _ := wire(TurnOptions{OnEvent: func(Event) {}}); string(js) != "{}" {
		t.Fatalf("zero turn options: %s", js)
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
