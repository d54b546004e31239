package hotplex_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	if first.Text != "echo: hello" || !first.ColdStart || first.Model != "reference-model" {
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

	var blockedEvents []string
	_, err := e.Execute(ctx, "s", "rm -rf /", &hotplex.TurnOptions{OnEvent: func(ev hotplex.Event) { blockedEvents = append(blockedEvents, ev.Type) }})
	var he *hotplex.Error
	if !errors.Is(err, hotplex.ErrDangerBlocked) || !errors.As(err, &he) {
		t.Fatalf("prompt: %v", err)
	}
	if strings.Join(blockedEvents, ",") != "danger_block" {
		t.Fatalf("a blocked prompt must be a danger_block event first: %v", blockedEvents)
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

func TestEngineBadOptionsFailNamingTheOption(t *testing.T) {
	agent := referenceAgent(t)
	cases := []struct {
		opts hotplex.EngineOptions
		want string
	}{
		{hotplex.EngineOptions{Binary: agent, TurnTimeout: -time.Second}, "turn_timeout"},
		{hotplex.EngineOptions{Binary: agent, MaxSessions: -1}, "max_sessions"},
		{hotplex.EngineOptions{Binary: agent, IdleTimeout: -time.Millisecond}, "idle_timeout"},
		{hotplex.EngineOptions{Binary: "/nonexistent/agent"}, "/nonexistent/agent"},
	}
	for _, c := range cases {
		e, err := hotplex.NewEngine(c.opts)
		if !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) || e != nil {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming it", c.want, err)
		}
	}
	if _, err := newEngine(t, nil).Execute(context.Background(), "s", "x", &hotplex.TurnOptions{Timeout: -time.Second}); !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("turn timeout: %v", err)
	}
}

// procLimit is the soft value of a row of /proc/<pid>/limits ("Max open
// files").
func procLimit(t *testing.T, pid int, row string) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, row); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no %q in /proc/%d/limits", row, pid)
	return ""
}

func TestEngineSessionWithLimitsRunsATurnUnderThem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	e := newEngine(t, func(o *hotplex.EngineOptions) {
		o.Limits = &hotplex.SessionLimits{
			MaxProcesses: 64, MemoryBytes: 512 << 20, CPUSeconds: 600, OpenFiles: 200,
		}
	})
	turn, err := e.Execute(context.Background(), "s", "hello", nil)
	if err != nil || turn.Text != "echo: hello" {
		t.Fatalf("turn %+v, err %v", turn, err)
	}
	// Per process in every containment mode.
	if got := procLimit(t, turn.PID, "Max open files"); got != "200" {
		t.Errorf("open files %s", got)
	}
	if got := procLimit(t, turn.PID, "Max cpu time"); got != "600" {
		t.Errorf("cpu time %s", got)
	}
	// Memory: the session's cgroup where there is one, else the agent's
	// address space.
	metrics, err := e.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, `containment="cgroup"`) {
		if got := procLimit(t, turn.PID, "Max address space"); got != fmt.Sprint(512<<20) {
			t.Errorf("address space %s", got)
		}
	}
}

func TestEngineBadLimitsFailNamingTheLimit(t *testing.T) {
	agent := referenceAgent(t)
	cases := []struct {
		limits hotplex.SessionLimits
		want   string
	}{
		{hotplex.SessionLimits{MaxProcesses: -1}, "limits.max_processes"},
		{hotplex.SessionLimits{MemoryBytes: -1}, "limits.memory_bytes"},
		{hotplex.SessionLimits{CPUSeconds: -5}, "limits.cpu_seconds"},
		{hotplex.SessionLimits{OpenFiles: -1}, "limits.open_files"},
	}
	for _, c := range cases {
		limits := c.limits
		e, err := hotplex.NewEngine(hotplex.EngineOptions{Binary: agent, Limits: &limits})
		if !errors.Is(err, hotplex.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) || e != nil {
			t.Errorf("%s: got %v, want ErrInvalidConfig naming it", c.want, err)
		}
	}
}

func TestSupervisorModeAndSessionCeilingAreReported(t *testing.T) {
	// The embedded supervisor program runs on Linux unless fork is asked for.
	want := "fork"
	if runtime.GOOS == "linux" && !strings.EqualFold(os.Getenv("HOTPLEX_SUPERVISOR"), "fork") {
		want = "exec"
	}
	if got := hotplex.SupervisorMode(); got != want {
		t.Errorf("SupervisorMode() = %q, want %q", got, want)
	}
	if hotplex.SessionCeiling() == 0 {
		t.Error("SessionCeiling() = 0")
	}
}

func TestEngineFollowUpTurnWithoutWorkdirContinuesTheSession(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "elsewhere")
	first, err := e.Execute(ctx, "s", "first", &hotplex.TurnOptions{Workdir: dir})
	if err != nil || !first.ColdStart {
		t.Fatalf("first: %+v %v", first, err)
	}
	next, err := e.Execute(ctx, "s", "recall", nil)
	if err != nil || next.ColdStart || next.Text != "history: first" || next.PID != first.PID {
		t.Fatalf("a turn without workdir must continue the session: %+v %v", next, err)
	}
	infos, _ := e.Sessions()
	if real, _ := filepath.EvalSymlinks(dir); len(infos) != 1 || infos[0].Workdir != real {
		t.Fatalf("sessions: %+v", infos)
	}
}

func TestEngineSessionStatsEventCostEqualsTheTurnCost(t *testing.T) {
	e := newEngine(t, nil)
	total := 0.0
	for i := 0; i < 3; i++ {
		var eventCost any
		turn, err := e.Execute(context.Background(), "s", "hi", &hotplex.TurnOptions{OnEvent: func(ev hotplex.Event) {
			if ev.Type == "session_stats" {
				eventCost = ev.Data["cost_usd"]
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if turn.CostUSD <= 0 || eventCost != turn.CostUSD {
			t.Fatalf("turn %d: session_stats cost %v, turn cost %v", i, eventCost, turn.CostUSD)
		}
		total += turn.CostUSD
	}
	if stats, _ := e.SessionStats("s"); stats == nil || stats.CostUSD != total {
		t.Fatalf("stats %+v, want cost %v", stats, total)
	}
}

// permissionEngine is an engine whose CanUseTool answers with answer(req).
func permissionEngine(t *testing.T, answer func(hotplex.ToolRequest) any) *hotplex.Engine {
	return newEngine(t, func(o *hotplex.EngineOptions) { o.CanUseTool = answer })
}

// toolTurn runs "tool:<cmd>" and returns its text and tool_result contents.
func toolTurn(t *testing.T, e *hotplex.Engine, cmd string) (string, string) {
	t.Helper()
	turn, err := e.Execute(context.Background(), "s", "tool:"+cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, ev := range turn.Events {
		if ev.Type == "tool_result" {
			results = append(results, fmt.Sprint(ev.Data["content"]))
		}
	}
	return turn.Text, strings.Join(results, "\n")
}

func TestEnginePermissionAnswers(t *testing.T) {
	var mu sync.Mutex
	var answer any
	var seen []hotplex.ToolRequest
	e := permissionEngine(t, func(req hotplex.ToolRequest) any {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, req)
		return answer
	})
	set := func(a any) { mu.Lock(); answer = a; mu.Unlock() }

	set(true)
	if text, _ := toolTurn(t, e, "ls"); text != "tool ran: ls" {
		t.Fatalf("allow: %q", text)
	}
	if len(seen) != 1 || seen[0].SessionID != "s" || seen[0].ToolName != "Bash" || seen[0].Input["command"] != "ls" || seen[0].Verdict == nil || seen[0].Verdict.Blocked {
		t.Fatalf("request: %+v", seen)
	}
	set(map[string]any{"behavior": "deny", "message": "not today"})
	if text, result := toolTurn(t, e, "ls"); text != "tool denied: ls" || !strings.Contains(result, "not today") {
		t.Fatalf("deny object: %q %q", text, result)
	}
	set("ask a human")
	if text, result := toolTurn(t, e, "ls"); text != "tool denied: ls" || !strings.Contains(result, "ask a human") {
		t.Fatalf("message string: %q %q", text, result)
	}
	// Anything but an explicit allow denies; so does an answer that cannot
	// be encoded (a func).
	for _, unexpected := range []any{false, 42, []any{}, map[string]any{"behavior": "maybe"}, func() {}} {
		set(unexpected)
		if text, _ := toolTurn(t, e, "ls"); text != "tool denied: ls" {
			t.Fatalf("%T %v must deny: %q", unexpected, unexpected, text)
		}
	}
	set(map[string]any{"behavior": "allow", "updatedInput": map[string]any{"command": "make check"}})
	if text, _ := toolTurn(t, e, "ls"); text != "tool ran: make check" {
		t.Fatalf("updatedInput: %q", text)
	}
	seen = nil
	if text, _ := toolTurn(t, e, "rm -rf /"); text != "tool denied: rm -rf /" || len(seen) != 0 {
		t.Fatalf("the WAF decides first: %q %d", text, len(seen))
	}
}

func TestEnginePanickingCanUseToolDenies(t *testing.T) {
	e := permissionEngine(t, func(hotplex.ToolRequest) any { panic("boom") })
	text, result := toolTurn(t, e, "ls")
	if text != "tool denied: ls" || !strings.Contains(result, "panicked: boom") {
		t.Fatalf("a panic must deny: %q %q", text, result)
	}
	// The session and the engine stay usable.
	if turn, err := e.Execute(context.Background(), "s", "hi", nil); err != nil || turn.Text != "echo: hi" {
		t.Fatalf("after the panic: %+v %v", turn, err)
	}
}
