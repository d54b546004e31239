package hotplex_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// schema is schema/hotplex.schema.json, the contract generated from the core.
type schema struct {
	Defs map[string]struct {
		Properties map[string]json.RawMessage `json:"properties"`
		OneOf      []struct {
			Properties map[string]struct {
				Const string `json:"const"`
			} `json:"properties"`
		} `json:"oneOf"`
	} `json:"$defs"`
	Errors []struct {
		Code int    `json:"code"`
		Name string `json:"name"`
	} `json:"x-hotplex-errors"`
	Events []string `json:"x-hotplex-events"`
}

func loadSchema(t *testing.T) schema {
	t.Helper()
	raw, err := os.ReadFile("../../schema/hotplex.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// jsonKeys are the json tag names of a struct's fields (not "-").
func jsonKeys(v any) []string {
	var keys []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

func propertyNames(props map[string]json.RawMessage) []string {
	var names []string
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// A field added to the core's records or options and missing here (or one
// here that the core does not know) fails this test.
func TestGoStructsMatchTheSchema(t *testing.T) {
	s := loadSchema(t)
	for def, v := range map[string]any{
		"Turn":          hotplex.Turn{},
		"SessionInfo":   hotplex.SessionInfo{},
		"SessionStats":  hotplex.SessionStats{},
		"Usage":         hotplex.Usage{},
		"ToolCall":      hotplex.ToolCall{},
		"EngineOptions": hotplex.EngineOptions{},
		"TurnOptions":   hotplex.TurnOptions{},
		"Verdict":       hotplex.Verdict{},
	} {
		d, ok := s.Defs[def]
		if !ok {
			t.Errorf("$defs has no %s", def)
			continue
		}
		want, got := propertyNames(d.Properties), jsonKeys(v)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: schema properties %v, Go json keys %v", def, want, got)
		}
	}
	// Events: every schema event name is a known Type, in the same order.
	var names []string
	for _, variant := range s.Defs["Event"].OneOf {
		names = append(names, variant.Properties["type"].Const)
	}
	if !reflect.DeepEqual(names, s.Events) || len(names) == 0 {
		t.Errorf("event names %v vs x-hotplex-events %v", names, s.Events)
	}
}

// Every error code of the core has its Status constant, its name and its
// errors.Is sentinel.
func TestStatusesMatchTheSchemaErrorTable(t *testing.T) {
	s := loadSchema(t)
	goStatuses := map[string]struct {
		status   hotplex.Status
		sentinel error
	}{
		"invalid_argument":  {hotplex.StatusInvalidArgument, hotplex.ErrInvalidArgument},
		"utf8":              {hotplex.StatusUTF8, hotplex.ErrUTF8},
		"invalid_rule":      {hotplex.StatusInvalidRule, hotplex.ErrInvalidRule},
		"panic":             {hotplex.StatusPanic, hotplex.ErrPanic},
		"invalid_config":    {hotplex.StatusInvalidConfig, hotplex.ErrInvalidConfig},
		"danger_blocked":    {hotplex.StatusDangerBlocked, hotplex.ErrDangerBlocked},
		"turn_timeout":      {hotplex.StatusTurnTimeout, hotplex.ErrTurnTimeout},
		"session_dead":      {hotplex.StatusSessionDead, hotplex.ErrSessionDead},
		"turn_failed":       {hotplex.StatusTurnFailed, hotplex.ErrTurnFailed},
		"capacity_exceeded": {hotplex.StatusCapacityExceeded, hotplex.ErrCapacityExceeded},
		"start_failed":      {hotplex.StatusStartFailed, hotplex.ErrStartFailed},
		"closed":            {hotplex.StatusClosed, hotplex.ErrEngineClosed},
		"pending":           {hotplex.StatusPending, nil}, // internal to Execute
		"spawn":             {hotplex.StatusSpawn, hotplex.ErrSpawn},
		"io":                {hotplex.StatusIO, hotplex.ErrIO},
		"containment":       {hotplex.StatusContainment, hotplex.ErrContainment},
	}
	if len(s.Errors) != len(goStatuses) {
		t.Errorf("schema has %d error codes, Go %d", len(s.Errors), len(goStatuses))
	}
	for _, e := range s.Errors {
		g, ok := goStatuses[e.Name]
		if !ok {
			t.Errorf("no Go status for %s (%d)", e.Name, e.Code)
			continue
		}
		if int(g.status) != e.Code || g.status.String() != e.Name {
			t.Errorf("%s: Go status %d named %q, schema code %d", e.Name, g.status, g.status, e.Code)
		}
		err := error(&hotplex.Error{Status: hotplex.Status(e.Code), Message: "m"})
		if g.sentinel != nil && !errors.Is(err, g.sentinel) {
			t.Errorf("%s: errors.Is does not match its sentinel", e.Name)
		}
	}
	if hotplex.StatusOK.String() != "ok" || hotplex.Status(99).String() != "unknown" {
		t.Errorf("names: %q %q", hotplex.StatusOK, hotplex.Status(99))
	}
}
