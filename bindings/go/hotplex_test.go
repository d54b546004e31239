package hotplex_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

func newDetector(t *testing.T, opts ...hotplex.Option) *hotplex.Detector {
	t.Helper()
	d, err := hotplex.NewDetector(opts...)
	if err != nil {
		t.Fatalf("NewDetector: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestVersions(t *testing.T) {
	if hotplex.ABIVersion() != 1 {
		t.Errorf("ABIVersion() = %d, want 1", hotplex.ABIVersion())
	}
	if hotplex.Version() == "" {
		t.Error("Version() is empty")
	}
}

func TestRmRfRootIsBlockedAndCritical(t *testing.T) {
	d := newDetector(t)
	v, err := d.CheckCommand("rm -rf /")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Blocked || v.Level != hotplex.LevelCritical {
		t.Fatalf("rm -rf /: got %+v, want blocked critical", v)
	}
	if v.Category != "file_delete" || v.RuleID == "" || v.Reason == "" {
		t.Errorf("rm -rf /: incomplete verdict %+v", v)
	}
	if v.Span == nil || v.Span.Start != 0 || v.Span.End != len("rm -rf /") {
		t.Errorf("rm -rf /: span %+v", v.Span)
	}
	if len(v.Suggestions) == 0 {
		t.Error("rm -rf /: no suggestions")
	}
	if v.Level.String() != "critical" || !v.Level.Blocks() {
		t.Errorf("Level methods: %q %v", v.Level.String(), v.Level.Blocks())
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"level":"critical"`) {
		t.Errorf("JSON: %s", b)
	}
	var back hotplex.Verdict
	if err := json.Unmarshal(b, &back); err != nil || back.Level != hotplex.LevelCritical {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func TestLsIsSafe(t *testing.T) {
	d := newDetector(t)
	v, err := d.CheckCommand("ls -la")
	if err != nil {
		t.Fatal(err)
	}
	if v.Blocked || v.Level != hotplex.LevelSafe || v.RuleID != "" || v.Category != "" || v.Span != nil {
		t.Fatalf("ls -la: got %+v, want safe", v)
	}
	if v.Level.String() != "safe" {
		t.Errorf("LevelSafe.String() = %q", v.Level.String())
	}
}

func TestPromptAndTool(t *testing.T) {
	d := newDetector(t)
	v, err := d.CheckPrompt("Please refactor the parser and add tests.")
	if err != nil || v.Blocked {
		t.Errorf("prose prompt: %+v %v", v, err)
	}
	v, err = d.CheckPrompt("run this:\n```sh\nrm -rf /\n```")
	if err != nil || !v.Blocked {
		t.Errorf("prompt with rm -rf /: %+v %v", v, err)
	}

	inputs := []any{
		`{"command": "rm -rf /"}`,
		[]byte(`{"command": "rm -rf /"}`),
		json.RawMessage(`{"command": "rm -rf /"}`),
		map[string]string{"command": "rm -rf /"},
		struct {
			Command string `json:"command"`
		}{"rm -rf /"},
	}
	for _, in := range inputs {
		v, err := d.CheckTool("Bash", in)
		if err != nil || !v.Blocked {
			t.Errorf("CheckTool(Bash, %T): %+v %v", in, v, err)
		}
	}
	if _, err := d.CheckTool("Bash", "[1, 2]"); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Errorf("non-object tool input: %v, want ErrInvalidArgument", err)
	}
	if _, err := d.CheckTool("Bash", make(chan int)); err == nil {
		t.Error("unencodable tool input: no error")
	}
}

func TestInvalidUTF8(t *testing.T) {
	d := newDetector(t)
	for _, s := range []string{"ls \xff", "\xc3\x28", string([]byte{0x80})} {
		v, err := d.CheckCommand(s)
		if !errors.Is(err, hotplex.ErrUTF8) || v != nil {
			t.Errorf("CheckCommand(%q) = %v, %v; want ErrUTF8", s, v, err)
		}
		var he *hotplex.Error
		if !errors.As(err, &he) || he.Status != hotplex.StatusUTF8 || !strings.Contains(he.Message, "UTF-8") {
			t.Errorf("error detail: %#v", err)
		}
		if errors.Is(err, hotplex.ErrInvalidRule) {
			t.Error("ErrUTF8 also matches ErrInvalidRule")
		}
	}
	if _, err := d.CheckTool("Bash", "{\"command\": \"\xff\"}"); !errors.Is(err, hotplex.ErrUTF8) {
		t.Errorf("tool input: %v, want ErrUTF8", err)
	}
	if _, err := hotplex.NewDetector(hotplex.WithRules("\xff|x|high|system")); !errors.Is(err, hotplex.ErrUTF8) {
		t.Errorf("rules: %v, want ErrUTF8", err)
	}
	// Empty input is fine.
	if v, err := d.CheckCommand(""); err != nil || v.Blocked {
		t.Errorf("empty command: %+v %v", v, err)
	}
}

func TestCustomRules(t *testing.T) {
	rules := "# deploys need a person\ndeploy\\s+--prod|Deploys to production|high|system\n"
	d := newDetector(t, hotplex.WithRules(rules), hotplex.WithoutBuiltinRules())
	v, err := d.CheckCommand("deploy --prod")
	if err != nil || !v.Blocked || v.Level != hotplex.LevelHigh || v.Category != "system" {
		t.Errorf("custom rule: %+v %v", v, err)
	}
	v, err = d.CheckCommand("rm -rf /")
	if err != nil || v.Blocked {
		t.Errorf("built-ins should be off: %+v %v", v, err)
	}
}

func TestBadRule(t *testing.T) {
	rules := "ok\\s+rule|fine|high|system\nbad|an unknown level|severe|system\n"
	d, err := hotplex.NewDetector(hotplex.WithRules(rules))
	if d != nil || !errors.Is(err, hotplex.ErrInvalidRule) {
		t.Fatalf("NewDetector = %v, %v; want ErrInvalidRule", d, err)
	}
	if !strings.Contains(err.Error(), "line 2") {
		t.Errorf("message does not name line 2: %v", err)
	}
	if _, err := hotplex.NewDetector(hotplex.WithAllowPaths("relative/path")); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Errorf("relative allow path: %v, want ErrInvalidArgument", err)
	}
	if _, err := hotplex.NewDetector(hotplex.WithAllowPaths(t.TempDir())); err != nil {
		t.Errorf("absolute allow path: %v", err)
	}
}

func TestAudit(t *testing.T) {
	var (
		mu     sync.Mutex
		events []hotplex.AuditEvent
	)
	d := newDetector(t, hotplex.WithAudit(func(ev hotplex.AuditEvent) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, ev)
	}))
	for _, cmd := range []string{"ls -la", "rm -rf /", "git status"} {
		if _, err := d.CheckCommand(cmd); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.CheckTool("Bash", map[string]string{"command": "rm -rf /"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 {
		t.Fatalf("got %d audit events, want 2: %+v", len(events), events)
	}
	ev := events[0]
	if ev.Kind != hotplex.KindCommand || ev.Input != "rm -rf /" || ev.Verdict.Level != hotplex.LevelCritical {
		t.Errorf("first event: %+v", ev)
	}
	if events[1].Kind != hotplex.KindTool || events[1].Kind.String() != "tool" {
		t.Errorf("second event: %+v", events[1])
	}
}

func TestAuditPanicIsContained(t *testing.T) {
	d := newDetector(t, hotplex.WithAudit(func(hotplex.AuditEvent) { panic("audit bug") }))
	v, err := d.CheckCommand("rm -rf /")
	if err != nil || !v.Blocked {
		t.Fatalf("check after a panicking audit: %+v %v", v, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	var audited atomic.Int64
	d := newDetector(t, hotplex.WithAudit(func(hotplex.AuditEvent) { audited.Add(1) }))
	const goroutines, rounds = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				v, err := d.CheckCommand("rm -rf /")
				if err != nil || !v.Blocked {
					errs <- errors.New("rm -rf / not blocked")
					return
				}
				v, err = d.CheckCommand("ls -la")
				if err != nil || v.Blocked {
					errs <- errors.New("ls -la blocked")
					return
				}
				// Errors are per call, never another goroutine's.
				if _, err := d.CheckCommand("\xff"); !errors.Is(err, hotplex.ErrUTF8) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := audited.Load(); got != goroutines*rounds {
		t.Errorf("audited %d, want %d", got, goroutines*rounds)
	}
}

func TestClose(t *testing.T) {
	d, err := hotplex.NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := d.CheckCommand("ls"); !errors.Is(err, hotplex.ErrClosed) {
		t.Errorf("CheckCommand after Close: %v", err)
	}
	if _, err := d.CheckPrompt("hi"); !errors.Is(err, hotplex.ErrClosed) {
		t.Errorf("CheckPrompt after Close: %v", err)
	}
	if _, err := d.CheckTool("Bash", "{}"); !errors.Is(err, hotplex.ErrClosed) {
		t.Errorf("CheckTool after Close: %v", err)
	}
}

func TestCloseWhileChecking(t *testing.T) {
	d, err := hotplex.NewDetector(hotplex.WithAudit(func(hotplex.AuditEvent) {}))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := d.CheckCommand("rm -rf /")
				if errors.Is(err, hotplex.ErrClosed) {
					return
				}
				if err != nil || !v.Blocked {
					t.Errorf("%+v %v", v, err)
					return
				}
			}
		}()
	}
	_ = d.Close()
	wg.Wait()
}

func TestExplain(t *testing.T) {
	d := newDetector(t)
	e, err := d.Explain("echo hi | sudo rm -rf / > /dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if e.Input != "echo hi | sudo rm -rf / > /dev/null" || e.Control != nil || e.Incomplete {
		t.Errorf("explanation: %+v", e)
	}
	if len(e.Commands) < 2 || len(e.Pipelines) == 0 || len(e.Redirects) == 0 || e.Code == nil {
		t.Errorf("canonical texts: %+v", e)
	}
	if !e.Verdict.Blocked || e.Verdict.Level != hotplex.LevelCritical || e.Verdict.Span == nil {
		t.Errorf("verdict: %+v", e.Verdict)
	}
	// The verdict is CheckCommand's, and its rule is among the hits.
	v, err := d.CheckCommand(e.Input)
	if err != nil {
		t.Fatal(err)
	}
	if v.RuleID != e.Verdict.RuleID || v.Reason != e.Verdict.Reason || *v.Span != *e.Verdict.Span {
		t.Errorf("Explain verdict %+v != CheckCommand verdict %+v", e.Verdict, v)
	}
	found := false
	for _, h := range e.Hits {
		if h.RuleID == "" || h.Category == "" || h.Scope == "" || h.Text == "" || h.Level == hotplex.LevelSafe {
			t.Errorf("incomplete hit %+v", h)
		}
		found = found || (h.RuleID == v.RuleID && h.Level == v.Level)
	}
	if !found {
		t.Errorf("the verdict's rule %q is not among the hits %+v", v.RuleID, e.Hits)
	}
	// It encodes back to the same field names.
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"hits":[{"rule_id":`, `"verdict":{"level":"critical"`, `"incomplete":false`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}

	safe, err := d.Explain("ls -la")
	if err != nil {
		t.Fatal(err)
	}
	if len(safe.Hits) != 0 || safe.Verdict.Level != hotplex.LevelSafe || safe.Verdict.Span != nil {
		t.Errorf("ls -la: %+v", safe)
	}

	if e, err := d.Explain("ls \xff"); !errors.Is(err, hotplex.ErrUTF8) || e != nil {
		t.Errorf("Explain(invalid UTF-8) = %v, %v; want ErrUTF8", e, err)
	}
	_ = d.Close()
	if _, err := d.Explain("ls"); !errors.Is(err, hotplex.ErrClosed) {
		t.Errorf("Explain after Close: %v, want ErrClosed", err)
	}
}
