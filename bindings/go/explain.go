package hotplex

/*
#include <stdlib.h>
#include "hotplex.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
)

// Hit is one rule that matched, in an Explanation.
type Hit struct {
	// RuleID identifies the rule, e.g. "file_delete.rm_recursive_outside_tree".
	RuleID string `json:"rule_id"`
	// Level is the rule's level.
	Level Level `json:"level"`
	// Category is the rule's category, e.g. "file_delete".
	Category string `json:"category"`
	// Scope is what the rule judged: "text", "script", "command", "redirect",
	// "pipeline" or "code".
	Scope string `json:"scope"`
	// Text is the text the rule matched, readable (argument spaces and pipes
	// restored).
	Text string `json:"text"`
}

// Explanation shows every stage of judging one command, from
// Detector.Explain: what the shell front end made of it, every rule that
// matched (not only the most severe) and the verdict. It encodes to JSON
// with the field names of hotplex's own JSON.
type Explanation struct {
	// Input is the command, as given.
	Input string `json:"input"`
	// Control is the control-byte pre-check's verdict when it decided alone
	// (then nothing else was analysed), else nil.
	Control *Verdict `json:"control"`
	// Commands are the canonical simple commands, each wrapper level on its
	// own ("sudo rm -rf /", then "rm -rf /").
	Commands []string `json:"commands"`
	// Redirects are the redirections, as "op target".
	Redirects []string `json:"redirects"`
	// Pipelines are the pipelines, commands joined by " | ".
	Pipelines []string `json:"pipelines"`
	// Code is the interpreter code and SQL statements, prefixed by the
	// program.
	Code []string `json:"code"`
	// Incomplete is true when a parse limit was hit; the verdict is then at
	// least LevelModerate.
	Incomplete bool `json:"incomplete"`
	// Hits are every rule that matched, in scope order.
	Hits []Hit `json:"hits"`
	// Effects are what the command does, as the effect model derived it
	// ("critical: delete-tree /etc (recursive delete)"), one per line of
	// judgement; the verdict is the stricter of these and the rules.
	Effects []string `json:"effects"`
	// Verdict is what CheckCommand returns for the same input (Explain does
	// not call the audit function, though).
	Verdict Verdict `json:"verdict"`
}

// Explain shows how cmd is judged: the canonical texts of every scope, every
// rule that matched and the final verdict, for debugging rules and reports.
// Unlike CheckCommand it does not call the audit function.
func (d *Detector) Explain(cmd string) (*Explanation, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.ptr == nil {
		return nil, ErrClosed
	}
	ptr, n := cString(cmd)
	var out *C.char
	err := call(func() C.hotplex_status {
		return C.hotplex_status(C.hotplex_detector_explain(d.ptr, ptr, n, &out))
	})
	runtime.KeepAlive(cmd)
	if err != nil {
		return nil, err
	}
	defer C.hotplex_string_free(out)
	var e Explanation
	if err := json.Unmarshal([]byte(C.GoString(out)), &e); err != nil {
		return nil, fmt.Errorf("hotplex: decoding explanation: %w", err)
	}
	return &e, nil
}
