package hotplex_test

import (
	"fmt"
	"log"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// Screen commands before an agent runs them.
func Example() {
	d, err := hotplex.NewDetector()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	for _, cmd := range []string{"rm -rf /", "ls -la"} {
		v, err := d.CheckCommand(cmd)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-8s blocked=%v level=%v category=%q\n", cmd, v.Blocked, v.Level, v.Category)
	}
	// Output:
	// rm -rf / blocked=true level=critical category="file_delete"
	// ls -la   blocked=false level=safe category=""
}

// Custom rules and an audit hook.
func ExampleNewDetector() {
	d, err := hotplex.NewDetector(
		hotplex.WithRules(`deploy\s+--prod|Deploys to production|high|system`),
		hotplex.WithAudit(func(ev hotplex.AuditEvent) {
			fmt.Printf("audit: %s %q -> %v\n", ev.Kind, ev.Input, ev.Verdict.Level)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	v, err := d.CheckCommand("deploy --prod")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blocked:", v.Blocked)
	// Output:
	// audit: command "deploy --prod" -> high
	// blocked: true
}
