package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The committed contract_gen.go is what the committed schema generates: a
// schema change (a new field, record or error code) without regenerating,
// or a hand edit of the generated file, fails here.
func TestContractGenIsUpToDate(t *testing.T) {
	schema, err := os.ReadFile("../../../../schema/hotplex.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := render(schema)
	if err != nil {
		t.Fatalf("rendering the schema: %v", err)
	}
	got, err := os.ReadFile("../../contract_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("bindings/go/contract_gen.go is not what schema/hotplex.schema.json generates;"+
				" run `go generate ./...` in bindings/go.\nfirst difference, line %d:\n  file:   %q\n  schema: %q", i+1, g, w)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"provider_session_id":     "ProviderSessionID",
		"cost_usd":                "CostUSD",
		"cli_duration_ms":         "CLIDurationMs",
		"api_duration_ms":         "APIDurationMs",
		"pid":                     "PID",
		"utf8":                    "UTF8",
		"io":                      "IO",
		"cache_read_input_tokens": "CacheReadInputTokens",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

// Rendering depends on the schema only (no map order), and the output is
// marked as generated.
func TestRenderIsDeterministic(t *testing.T) {
	schema, err := os.ReadFile("../../../../schema/hotplex.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := render(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := render(schema)
	if !bytes.Equal(a, b) {
		t.Error("two renderings of the same schema differ")
	}
	if !bytes.HasPrefix(a, []byte(header+"\n")) {
		t.Error("the output does not start with the generated-code header")
	}
}
