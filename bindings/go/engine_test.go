package hotplex_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// referenceAgent is the bundled agent that speaks Claude Code's protocol.
func referenceAgent(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOTPLEX_REFERENCE_AGENT"); p != "" {
		return p
	}
	root, _ := filepath.Abs("../..")
	p := filepath.Join(root, "target", "debug", "hotplex-reference-agent")
	if _, err := os.Stat(p); err != nil {
		cmd := exec.Command("cargo", "build", "-q", "-p", "hotplex-reference-agent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the reference agent: %v\n%s", err, out)
		}
	}
	return p
}

func newEngine(t *testing.T, mod func(*hotplex.EngineOptions)) *hotplex.Engine {
	t.Helper()
	dir := t.TempDir()
	opts := hotplex.EngineOptions{
		Binary:         referenceAgent(t),
		Env:            map[string]string{"HOTPLEX_REF_STATE": dir},
		DefaultWorkdir: filepath.Join(dir, "work"),
		InterruptGrace: 2 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	e, err := hotplex.NewEngine(opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEngineTurnsStayHotOnOneProcess(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	var seen []string
	first, err := e.Execute(ctx, "s", "hello", &hotplex.TurnOptions{OnEvent: func(ev hotplex.Event) { seen = append(seen, ev.Type) }})
	if err != nil {
		t.Fatal(err)
	}
	if first.Text != "echo: hello" || !first.ColdStart || first.Stats.Model != "reference-model" {
		t.Fatalf("first turn: %+v", first)
	}
	if strings.Join(seen, ",") != "session_start,answer,session_stats" || len(first.Events) != 3 {
		t.Fatalf("events: %v", seen)
	}
	for i := 0; i < 3; i++ {
		turn, err := e.Execute(ctx, "s", fmt.Sprintf("turn %d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if turn.ColdStart || turn.PID != first.PID {
			t.Fatalf("turn %d not hot: %+v", i, turn)
		}
	}
	infos, err := e.Sessions()
	if err != nil || len(infos) != 1 || infos[0].Status != "ready" || infos[0].Turns != 4 {
		t.Fatalf("sessions: %+v %v", infos, err)
	}
	stats, err := e.SessionStats("s")
	if err != nil || stats.Turns != 4 || stats.ColdStarts != 1 {
		t.Fatalf("stats: %+v %v", stats, err)
	}
	if none, err := e.SessionStats("nope"); none != nil || err != nil {
		t.Fatalf("unknown session: %+v %v", none, err)
	}
}

func TestEngineWAFDeniesADangerousToolCall(t *testing.T) {
	e := newEngine(t, nil)
	turn, err := e.Execute(context.Background(), "s", "tool:rm -rf /", nil)
	if err != nil {
		t.Fatal(err)
	}
	if turn.Text != "tool denied: rm -rf /" {
		t.Fatalf("text %q", turn.Text)
	}
	found := false
	for _, ev := range turn.Events {
		if ev.Type == "danger_block" {
			v := ev.Data["verdict"].(map[string]any)
			found = v["level"] == "critical"
		}
	}
	if !found {
		t.Fatalf("no critical danger_block in %+v", turn.Events)
	}
}

func TestEngineErrors(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()

	_, err := e.Execute(ctx, "s", "rm -rf /", nil)
	var he *hotplex.Error
	if !errors.Is(err, hotplex.ErrDangerBlocked) || !errors.As(err, &he) {
		t.Fatalf("prompt: %v", err)
	}
	var detail struct {
		Verdict struct{ Level string } `json:"verdict"`
	}
	if json.Unmarshal(he.Detail, &detail) != nil || detail.Verdict.Level != "critical" {
		t.Fatalf("detail %s", he.Detail)
	}

	if _, err := e.Execute(ctx, "s", "stall:5000", &hotplex.TurnOptions{Timeout: 300 * time.Millisecond}); !errors.Is(err, hotplex.ErrTurnTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	if turn, err := e.Execute(ctx, "s", "after", nil); err != nil || turn.ColdStart {
		t.Fatalf("after timeout: %+v %v", turn, err)
	}
	if _, err := e.Execute(ctx, "s", "fail", nil); !errors.Is(err, hotplex.ErrTurnFailed) {
		t.Fatalf("fail: %v", err)
	}
	if _, err := e.Execute(ctx, "s", "crash", nil); !errors.Is(err, hotplex.ErrSessionDead) {
		t.Fatalf("crash: %v", err)
	}
	if turn, err := e.Execute(ctx, "s", "recall", nil); err != nil || !turn.Resumed {
		t.Fatalf("resume: %+v %v", turn, err)
	}
	if _, err := e.Execute(ctx, "", "x", nil); !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := hotplex.NewEngine(hotplex.EngineOptions{MaxSessions: -1}); !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("bad option: %v", err)
	}

	missing := newEngine(t, func(o *hotplex.EngineOptions) { o.Binary = "/nonexistent/agent" })
	if _, err := missing.Execute(ctx, "s", "x", nil); !errors.Is(err, hotplex.ErrStartFailed) {
		t.Fatalf("missing binary: %v", err)
	}

	small := newEngine(t, func(o *hotplex.EngineOptions) { o.MaxSessions = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := small.Execute(ctx, "a", "stall:1000", nil)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := small.Execute(ctx, "b", "x", nil); !errors.Is(err, hotplex.ErrCapacityExceeded) {
		t.Fatalf("capacity: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if existed, err := e.StopSession("s"); !existed || err != nil {
		t.Fatalf("stop: %v %v", existed, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Execute(ctx, "s", "x", nil); !errors.Is(err, hotplex.ErrEngineClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestEngineContextCancelInterruptsTheTurn(t *testing.T) {
	e := newEngine(t, nil)
	first, err := e.Execute(context.Background(), "s", "hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.Execute(ctx, "s", "stall:10000", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}
	turn, err := e.Execute(context.Background(), "s", "next", nil)
	if err != nil || turn.Text != "echo: next" || turn.PID != first.PID {
		t.Fatalf("after cancel: %+v %v", turn, err)
	}
}

func TestEngineConcurrentSessions(t *testing.T) {
	e := newEngine(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				want := fmt.Sprintf("s%d-%d", i, j)
				turn, err := e.Execute(context.Background(), fmt.Sprintf("s%d", i), want, nil)
				if err != nil {
					errs <- err
					return
				}
				if turn.Text != "echo: "+want {
					errs <- fmt.Errorf("got %q want %q", turn.Text, want)
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if infos, _ := e.Sessions(); len(infos) != 8 {
		t.Fatalf("%d sessions", len(infos))
	}
}
