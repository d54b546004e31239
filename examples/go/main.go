// The README's Go example: the WAF, then a turn on the session pool.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

func main() {
	d, err := hotplex.NewDetector()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	v, err := d.CheckCommand("rm -rf /")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Blocked, v.Level) // true critical

	agent := os.Getenv("HOTPLEX_AGENT")        // empty: the Claude Code CLI ("claude")
	state, err := os.MkdirTemp("", "hotplex-") // e.g. /var/lib/app/hotplex
	if err != nil {
		log.Fatal(err)
	}
	e, err := hotplex.NewEngine(hotplex.EngineOptions{Binary: agent, StateDir: state})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background() // cancelling ctx cancels the turn (the agent is interrupted)
	opts := &hotplex.TurnOptions{Workdir: filepath.Join(state, "app")}
	turn, err := e.Execute(ctx, "chat-42", "fix the test", opts)
	switch {
	case errors.Is(err, hotplex.ErrTurnTimeout): // interrupted; the session stays hot
	case errors.Is(err, hotplex.ErrSessionDead): // the next Execute resumes
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(turn.Text, turn.ColdStart, turn.DurationMs)
	}
}
