// Command livetext runs one turn with partial messages on the agent CLI in
// CLAUDE_BIN (environment AGENT_ENV, a JSON object; workdir WORKDIR) through
// Engine.Stream and prints {"deltas": [...], "text": "..."}. The end-to-end
// suite (tests/e2e/test_claude_cli.py) runs it against the real Claude Code
// CLI and its fake Messages API.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	var env map[string]string
	if err := json.Unmarshal([]byte(os.Getenv("AGENT_ENV")), &env); err != nil {
		return fmt.Errorf("AGENT_ENV: %w", err)
	}
	e, err := hotplex.NewEngine(hotplex.EngineOptions{
		Binary:          os.Getenv("CLAUDE_BIN"),
		Env:             env,
		TurnTimeout:     60 * time.Second,
		StartupTimeout:  60 * time.Second,
		PartialMessages: true,
	})
	if err != nil {
		return err
	}
	defer e.Close()
	deltas := []string{}
	text := ""
	opts := &hotplex.TurnOptions{Workdir: os.Getenv("WORKDIR")}
	for ev, err := range e.Stream(context.Background(), "live", "a streamed reply in several pieces", opts) {
		if err != nil {
			return err
		}
		switch ev.Type {
		case "answer_delta":
			deltas = append(deltas, ev.Data["text"].(string))
		case hotplex.EventTurn:
			text = ev.Turn.Text
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"deltas": deltas, "text": text})
}
