package promcollector_test

import (
	"os"
	"os/exec"
	"path/filepath"
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
	root, _ := filepath.Abs("../../..")
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

// options are the reference agent's usual options, in a fresh directory.
func options(t *testing.T) hotplex.EngineOptions {
	dir := t.TempDir()
	return hotplex.EngineOptions{
		Binary:         referenceAgent(t),
		Env:            map[string]string{"HOTPLEX_REF_STATE": dir},
		DefaultWorkdir: filepath.Join(dir, "work"),
		InterruptGrace: 2 * time.Second,
	}
}

func newEngine(t *testing.T, opts hotplex.EngineOptions) *hotplex.Engine {
	t.Helper()
	e, err := hotplex.NewEngine(opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}
