// Smoke check of the Go module as a consumer gets it from a module proxy
// (tests/run-dist.sh writes this command's go.mod, serves the module zip that
// scripts/dist.sh made from a file-system GOPROXY, and builds it with no
// cargo on PATH): the prebuilt static library links and runs its embedded
// supervisor program (mode "exec"), the Detector blocks `rm -rf /`, and the
// Engine runs two turns on the reference agent, with a session limit.
// Usage: smoke <expected version> <reference-agent> <tmpdir>
package main

import (
	"context"
	"fmt"
	"os"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

func check(ok bool, what string, args ...any) {
	if !ok {
		fmt.Fprintf(os.Stderr, "Go smoke: "+what+"\n", args...)
		os.Exit(1)
	}
}

func main() {
	want, agent, tmp := os.Args[1], os.Args[2], os.Args[3]
	check(hotplex.ModuleVersion == want, "ModuleVersion %q, want %q", hotplex.ModuleVersion, want)
	check(hotplex.Version() == want, "linked library %q, want %q", hotplex.Version(), want)
	// The library carries its supervisor program and can run it.
	check(hotplex.SupervisorMode() == "exec", "supervisor mode %q", hotplex.SupervisorMode())

	d, err := hotplex.NewDetector()
	check(err == nil, "NewDetector: %v", err)
	defer d.Close()
	v, err := d.CheckCommand("rm -rf /")
	check(err == nil && v.Blocked && v.Level == hotplex.LevelCritical, "rm -rf /: %+v %v", v, err)

	e, err := hotplex.NewEngine(hotplex.EngineOptions{
		Binary:         agent,
		Env:            map[string]string{"HOTPLEX_REF_STATE": tmp},
		DefaultWorkdir: tmp + "/work",
		Limits:         &hotplex.SessionLimits{MaxProcesses: 64},
	})
	check(err == nil, "NewEngine: %v", err)
	defer e.Close()
	ctx := context.Background()
	turn, err := e.Execute(ctx, "smoke", "hello", nil)
	check(err == nil && turn.Text == "echo: hello" && turn.ColdStart, "turn: %+v %v", turn, err)
	turn, err = e.Execute(ctx, "smoke", "again", nil)
	check(err == nil && !turn.ColdStart, "hot turn: %+v %v", turn, err)

	fmt.Printf("Go smoke (hotplex %s): ok\n", hotplex.Version())
}
