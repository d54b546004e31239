package hotplex_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// The ACP provider (EngineOptions.Provider = ProviderACP) against the
// reference ACP agent (hotplex-reference-acp, tests/reference-agent/src/
// acp.rs): the options reach the core, turns run on one hot process, the
// WAF screens what the agent asks to run, errors match their sentinels.
// The ACP session itself is tested in Rust
// (tests/reference-agent/tests/acp_engine.rs).

// referenceACPAgent is the bundled agent that speaks the Agent Client
// Protocol; it is built with the reference agent (one crate, two binaries).
func referenceACPAgent(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOTPLEX_REFERENCE_ACP"); p != "" {
		return p
	}
	p := filepath.Join(filepath.Dir(referenceAgent(t)), "hotplex-reference-acp")
	if _, err := os.Stat(p); err != nil {
		root, _ := filepath.Abs("../..")
		cmd := exec.Command("cargo", "build", "-q", "-p", "hotplex-reference-agent")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the reference agents: %v\n%s", err, out)
		}
	}
	return p
}

// acpOptions are engine options for the reference ACP agent, its state and
// a private HOME (where the canary of the WAF test lives) in dir.
func acpOptions(t *testing.T, dir string) hotplex.EngineOptions {
	t.Helper()
	for _, sub := range []string{"home", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return hotplex.EngineOptions{
		Provider:       hotplex.ProviderACP,
		Binary:         referenceACPAgent(t),
		Args:           []string{"--state-dir", filepath.Join(dir, "acp-state")},
		Env:            map[string]string{"HOME": filepath.Join(dir, "home")},
		DefaultWorkdir: filepath.Join(dir, "work"),
		TurnTimeout:    20 * time.Second,
		StartupTimeout: 20 * time.Second,
		InterruptGrace: 2 * time.Second,
	}
}

// newACPEngine is an engine on the reference ACP agent, closed by the
// test's cleanup; it returns the engine's directory too.
func newACPEngine(t *testing.T) (*hotplex.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	e, err := hotplex.NewEngine(acpOptions(t, dir))
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, dir
}

func eventTypes(turn *hotplex.Turn) []string {
	var types []string
	for _, ev := range turn.Events {
		types = append(types, ev.Type)
	}
	return types
}

func TestACPFiveTurnsShareOneProcessWithOneColdStart(t *testing.T) {
	e, _ := newACPEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var pids []int
	for i := 0; i < 5; i++ {
		turn, err := e.Execute(ctx, "s", fmt.Sprintf("hello %d", i), nil)
		if err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
		if turn.Text != fmt.Sprintf("echo: hello %d", i) || turn.ColdStart != (i == 0) || turn.Resumed {
			t.Fatalf("turn %d: %+v", i, turn)
		}
		types := eventTypes(turn)
		first := map[bool]string{true: "session_start", false: "answer"}[i == 0]
		if types[0] != first || types[len(types)-1] != "session_stats" {
			t.Fatalf("turn %d events: %v", i, types)
		}
		pids = append(pids, turn.PID)
	}
	for _, pid := range pids {
		if pid != pids[0] {
			t.Fatalf("one process expected: %v", pids)
		}
	}
	stats, err := e.SessionStats("s")
	if err != nil || stats.Turns != 5 || stats.ColdStarts != 1 || math.Abs(stats.CostUSD-0.005) > 1e-9 {
		t.Fatalf("stats: %+v %v", stats, err)
	}
}

func TestACPWAFDeniesRmRfHomeAndTheCanarySurvives(t *testing.T) {
	e, dir := newACPEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	canary := filepath.Join(dir, "home", "canary")
	if err := os.WriteFile(canary, []byte("alive"), 0o644); err != nil {
		t.Fatal(err)
	}
	turn, err := e.Execute(ctx, "s", "run:rm -rf ~", nil)
	if err != nil {
		t.Fatal(err)
	}
	if turn.Text != "denied: rm -rf ~" {
		t.Fatalf("text %q", turn.Text)
	}
	critical := false
	for _, ev := range turn.Events {
		if ev.Type == "danger_block" {
			v, _ := ev.Data["verdict"].(map[string]any)
			critical = v["level"] == "critical" && v["blocked"] == true
		}
	}
	if !critical || !strings.Contains(strings.Join(eventTypes(turn), ","), "permission_request") {
		t.Fatalf("no critical danger_block after a permission_request: %v", eventTypes(turn))
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != "alive" {
		t.Fatalf("canary: %q %v", b, err)
	}
	if stats, err := e.SessionStats("s"); err != nil || stats.ToolsDenied != 1 {
		t.Fatalf("stats: %+v %v", stats, err)
	}
	// A harmless command runs, in a terminal hotplex serves.
	ok, err := e.Execute(ctx, "s", "run:echo hi", nil)
	if err != nil || ok.Text != "ran: echo hi\nexit: 0\nhi\n" || ok.PID != turn.PID {
		t.Fatalf("run:echo hi: %+v %v", ok, err)
	}
}

func TestACPTimeoutAndCancelKeepTheSessionHot(t *testing.T) {
	e, _ := newACPEngine(t)
	ctx := context.Background()
	first, err := e.Execute(ctx, "s", "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Execute(ctx, "s", "sleep:5000", &hotplex.TurnOptions{Timeout: 300 * time.Millisecond}); !errors.Is(err, hotplex.ErrTurnTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.Execute(short, "s", "sleep:5000", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context deadline: %v", err)
	}
	after, err := e.Execute(ctx, "s", "after", nil)
	if err != nil || after.Text != "echo: after" || after.ColdStart || after.PID != first.PID {
		t.Fatalf("after: %+v %v", after, err)
	}
}

func TestACPRefusesClaudeOnlyOptionsNamingThem(t *testing.T) {
	e, dir := newACPEngine(t)
	ctx := context.Background()
	for _, c := range []struct {
		mod  func(*hotplex.EngineOptions)
		want string
	}{
		{func(o *hotplex.EngineOptions) { o.Model = "m" }, "model: a claude-code option"},
		{func(o *hotplex.EngineOptions) { o.PermissionMode = "plan" }, "permission_mode: "},
		{func(o *hotplex.EngineOptions) { o.Provider = "opencode" }, "provider"},
	} {
		opts := acpOptions(t, dir)
		c.mod(&opts)
		got, err := hotplex.NewEngine(opts)
		if !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) || got != nil {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming it", c.want, err)
		}
	}
	_, err := e.Execute(ctx, "s", "x", &hotplex.TurnOptions{Session: &hotplex.SessionOptions{MaxTurns: 2}})
	if !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), "session.max_turns: ") {
		t.Fatalf("session.max_turns: %v", err)
	}
	if infos, err := e.Sessions(); err != nil || len(infos) != 0 {
		t.Fatalf("a refused turn started a session: %+v %v", infos, err)
	}
	if turn, err := e.Execute(ctx, "s", "hi", nil); err != nil || turn.Text != "echo: hi" {
		t.Fatalf("hi: %+v %v", turn, err)
	}
}

func TestACPSessionOnAClaudeCodeEngine(t *testing.T) {
	e := newEngine(t, nil) // the stream-json reference agent
	ctx := context.Background()
	acp := &hotplex.TurnOptions{Session: &hotplex.SessionOptions{
		Provider: hotplex.ProviderACP,
		Binary:   referenceACPAgent(t),
		Args:     []string{},
	}}
	claude, err := e.Execute(ctx, "claude", "hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.Execute(ctx, "acp", "hi", acp)
	if err != nil || first.Text != "echo: hi" || first.PID == claude.PID {
		t.Fatalf("acp session: %+v %v (claude pid %d)", first, err, claude.PID)
	}
	// Later turns need not repeat the session's options.
	caps, err := e.Execute(ctx, "acp", "caps?", nil)
	if err != nil || caps.Text != "caps: read=true write=true terminal=true" || caps.PID != first.PID {
		t.Fatalf("caps?: %+v %v", caps, err)
	}
	other := &hotplex.TurnOptions{Session: &hotplex.SessionOptions{Provider: hotplex.ProviderClaudeCode}}
	if _, err := e.Execute(ctx, "acp", "x", other); !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), "session.provider") {
		t.Fatalf("switching provider: %v", err)
	}
}

func TestACPFourSessionsRunTurnsAtOnce(t *testing.T) {
	e, _ := newACPEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	pids := make([]int, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				want := fmt.Sprintf("turn %d of %d", j, i)
				turn, err := e.Execute(ctx, fmt.Sprintf("s%d", i), want, nil)
				if err != nil {
					errs <- err
					return
				}
				if turn.Text != "echo: "+want || (j > 0 && turn.PID != pids[i]) {
					errs <- fmt.Errorf("session %d turn %d: %+v", i, j, turn)
					return
				}
				pids[i] = turn.PID
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int]bool{}
	for _, p := range pids {
		seen[p] = true
	}
	if len(seen) != 4 {
		t.Fatalf("a process per session expected: %v", pids)
	}
}
