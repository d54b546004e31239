package hotplex

/*
#include "hotplex.h"
*/
import "C"

import "fmt"

// Level is how dangerous a checked input is. The numbers are part of the C
// ABI (a smaller positive number is more severe); Critical and High block.
type Level int

// The levels, with hotplex's numbers.
const (
	// LevelCritical is irreversible or host-wide damage (rm -rf /, mkfs,
	// reverse shells). Blocked.
	LevelCritical Level = 1
	// LevelHigh is high impact (sudo su -, crontab -r, secret reads). Blocked.
	LevelHigh Level = 2
	// LevelModerate is risky; a person should confirm (git reset --hard).
	LevelModerate Level = 3
	// LevelSafe means no rule matched.
	LevelSafe Level = -1
)

// String returns "critical", "high", "moderate" or "safe" ("Level(n)" for
// other values).
func (l Level) String() string {
	switch l {
	case LevelCritical:
		return "critical"
	case LevelHigh:
		return "high"
	case LevelModerate:
		return "moderate"
	case LevelSafe:
		return "safe"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Blocks reports whether a verdict at this level stops the input (critical
// or high).
func (l Level) Blocks() bool {
	return l == LevelCritical || l == LevelHigh
}

// MarshalText encodes the level by name, as hotplex's JSON does.
func (l Level) MarshalText() ([]byte, error) {
	switch l {
	case LevelCritical, LevelHigh, LevelModerate, LevelSafe:
		return []byte(l.String()), nil
	}
	return nil, fmt.Errorf("hotplex: invalid level %d", int(l))
}

// UnmarshalText decodes a level name ("critical", "high", "moderate", "safe").
func (l *Level) UnmarshalText(text []byte) error {
	for _, c := range []Level{LevelCritical, LevelHigh, LevelModerate, LevelSafe} {
		if c.String() == string(text) {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("hotplex: unknown level %q", text)
}

// Span is the byte range [Start, End) of the checked input that the reported
// rule matched.
type Span struct {
	// Start is the offset of the first matched byte.
	Start int `json:"start"`
	// End is the offset just past the last matched byte.
	End int `json:"end"`
}

// Verdict is the outcome of one check. It encodes to JSON with the field
// names of hotplex's own JSON (absent strings are "" rather than null).
type Verdict struct {
	// Level of the reported match, or LevelSafe if nothing matched.
	Level Level `json:"level"`
	// Blocked is true when Level is critical or high: do not run the input.
	Blocked bool `json:"blocked"`
	// RuleID identifies the reported rule, e.g. "file_delete.rm_recursive_outside_tree"
	// ("" when safe).
	RuleID string `json:"rule_id"`
	// Category of the reported rule, e.g. "file_delete" ("" when safe).
	Category string `json:"category"`
	// Reason is why the input was flagged ("no rule matched" when safe).
	Reason string `json:"reason"`
	// Canonical is the text the rule judged: the command after quote removal
	// and wrapper stripping ("" when there is none).
	Canonical string `json:"canonical"`
	// Span is the part of the input that matched (nil when safe).
	Span *Span `json:"span"`
	// Suggestions say what to do instead.
	Suggestions []string `json:"suggestions"`
}

// goString copies a C string owned by a verdict ("" for NULL).
func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// convertVerdict copies a C verdict into Go memory; v stays owned by the
// caller.
func convertVerdict(v *C.hotplex_verdict) *Verdict {
	out := &Verdict{
		Level:     Level(C.hotplex_verdict_level(v)),
		Blocked:   bool(C.hotplex_verdict_blocked(v)),
		RuleID:    goString(C.hotplex_verdict_rule_id(v)),
		Category:  goString(C.hotplex_verdict_category_name(v)),
		Reason:    goString(C.hotplex_verdict_reason(v)),
		Canonical: goString(C.hotplex_verdict_canonical(v)),
	}
	// The span call only fails when there is no span; its error message
	// (per thread) is irrelevant here.
	var start, end C.size_t
	if C.hotplex_verdict_span(v, &start, &end) == C.HOTPLEX_STATUS_OK {
		out.Span = &Span{Start: int(start), End: int(end)}
	}
	n := int(C.hotplex_verdict_suggestion_count(v))
	out.Suggestions = make([]string, 0, n)
	for i := 0; i < n; i++ {
		out.Suggestions = append(out.Suggestions, goString(C.hotplex_verdict_suggestion(v, C.size_t(i))))
	}
	return out
}
