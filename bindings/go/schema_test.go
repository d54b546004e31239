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

// The records (Turn, SessionInfo, ...) and the Status constants are
// generated from the schema (contract_gen.go; internal/gencontract checks it
// is up to date). The types written by hand are checked here: an option
// added to the core and missing here (or one here that the core does not
// know) fails this test.
func TestHandWrittenStructsMatchTheSchema(t *testing.T) {
	s := loadSchema(t)
	for def, v := range map[string]any{
		"EngineOptions":    hotplex.EngineOptions{},
		"TurnOptions":      hotplex.TurnOptions{},
		"Verdict":          hotplex.Verdict{},
		"SessionOptions":   hotplex.SessionOptions{},
		"SessionLimits":    hotplex.SessionLimits{},
		"ImageInput":       hotplex.ImageInput{},
		"PrewarmProfile":   hotplex.PrewarmProfile{},
		"PlacementOptions": hotplex.PlacementOptions{},
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

// The C library names every error code of the schema as the schema does
// (the Status constants themselves are generated from the same table).
func TestStatusNamesMatchTheSchemaErrorTable(t *testing.T) {
	s := loadSchema(t)
	if len(s.Errors) == 0 {
		t.Fatal("schema has no x-hotplex-errors")
	}
	for _, e := range s.Errors {
		if got := hotplex.Status(e.Code).String(); got != e.Name {
			t.Errorf("status %d: the C library names it %q, the schema %q", e.Code, got, e.Name)
		}
		err := error(&hotplex.Error{Status: hotplex.Status(e.Code), Message: "m"})
		if !errors.Is(err, &hotplex.Error{Status: hotplex.Status(e.Code)}) {
			t.Errorf("%s: errors.Is does not match by status", e.Name)
		}
	}
	if hotplex.StatusOK.String() != "ok" || hotplex.Status(99).String() != "unknown" {
		t.Errorf("names: %q %q", hotplex.StatusOK, hotplex.Status(99))
	}
	// Two sentinels named other than Err + status.
	if !errors.Is(&hotplex.Error{Status: hotplex.StatusClosed}, hotplex.ErrEngineClosed) || errors.Is(hotplex.ErrClosed, hotplex.ErrEngineClosed) {
		t.Error("ErrEngineClosed must match StatusClosed, and only it")
	}
}
