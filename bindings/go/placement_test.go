package hotplex_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// placedEngine is one "host" sharing the store under root: its own
// configuration directory (where the reference agent keeps CLI-style
// transcripts), workdir and state directory, as a separate machine would
// have.
func placedEngine(t *testing.T, root, name string) *hotplex.Engine {
	t.Helper()
	config := filepath.Join(root, name, "config")
	work := filepath.Join(root, name, "work dir")
	for _, d := range []string{config, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e, err := hotplex.NewEngine(hotplex.EngineOptions{
		Binary:         referenceAgent(t),
		Env:            map[string]string{"CLAUDE_CONFIG_DIR": config},
		DefaultWorkdir: work,
		StateDir:       filepath.Join(root, name, "state"),
		TurnTimeout:    20 * time.Second,
		StartupTimeout: 20 * time.Second,
		InterruptGrace: 2 * time.Second,
		Placement: &hotplex.PlacementOptions{
			Owner:    name,
			Store:    filepath.Join(root, "store"),
			LeaseTTL: 10 * time.Second,
		},
	})
	if err != nil {
		t.Fatalf("NewEngine(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// ownerOf is the owner an ErrOwnedElsewhere names in its Detail.
func ownerOf(t *testing.T, err error) string {
	t.Helper()
	var he *hotplex.Error
	if !errors.Is(err, hotplex.ErrOwnedElsewhere) || !errors.As(err, &he) {
		t.Fatalf("want ErrOwnedElsewhere, got %v", err)
	}
	var d struct {
		Error   string `json:"error"`
		Session string `json:"session"`
		Owner   string `json:"owner"`
	}
	if err := json.Unmarshal(he.Detail, &d); err != nil || d.Error != "owned_elsewhere" || d.Session == "" {
		t.Fatalf("detail %s: %v", he.Detail, err)
	}
	return d.Owner
}

func owns(t *testing.T, e *hotplex.Engine, id string) bool {
	t.Helper()
	ok, err := e.Owns(id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestPlacementMovesASessionWithItsHistory(t *testing.T) {
	root := t.TempDir()
	a, b := placedEngine(t, root, "host-a"), placedEngine(t, root, "host-b")
	ctx := context.Background()

	for _, p := range []string{"apples", "pears"} {
		if _, err := a.Execute(ctx, "s1", p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !owns(t, a, "s1") || owns(t, b, "s1") {
		t.Fatal("s1 should be host-a's only")
	}
	_, err := b.Execute(ctx, "s1", "steal", nil)
	if got := ownerOf(t, err); got != "host-a" {
		t.Fatalf("owner %q", got)
	}
	if err := b.Adopt(ctx, "s1", ""); ownerOf(t, err) != "host-a" {
		t.Fatalf("adopt: %v", err)
	}

	released, err := a.Release(ctx, "s1")
	if err != nil || !released {
		t.Fatalf("release: %v %v", released, err)
	}
	if again, err := a.Release(ctx, "s1"); err != nil || again {
		t.Fatalf("second release: %v %v", again, err)
	}
	if owns(t, a, "s1") {
		t.Fatal("host-a still owns s1")
	}
	if infos, err := a.Sessions(); err != nil || len(infos) != 0 {
		t.Fatalf("host-a's process should be gone: %+v %v", infos, err)
	}
	moved, err := b.Execute(ctx, "s1", "recall", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !moved.Resumed || moved.Text != "history: apples | pears" {
		t.Fatalf("moved turn: resumed %v, text %q", moved.Resumed, moved.Text)
	}
	if !owns(t, b, "s1") {
		t.Fatal("host-b should own s1")
	}
	_, err = a.Execute(ctx, "s1", "back", nil)
	if got := ownerOf(t, err); got != "host-b" {
		t.Fatalf("owner %q", got)
	}

	// host-b drains: its sessions go back to the store, sorted; it then
	// takes no new session, and host-a adopts s1 with all of its history.
	if _, err := b.Execute(ctx, "s2", "plums", nil); err != nil {
		t.Fatal(err)
	}
	load, err := b.Load()
	if err != nil || load.Sessions != 2 || load.Busy != 0 || load.Draining || load.AgentMemoryBytes == 0 {
		t.Fatalf("load before the drain: %+v %v", load, err)
	}
	ids, err := b.Drain(ctx, 5*time.Second)
	if err != nil || !reflect.DeepEqual(ids, []string{"s1", "s2"}) {
		t.Fatalf("drain: %v %v", ids, err)
	}
	load, err = b.Load()
	if err != nil || !load.Draining || load.Sessions != 0 {
		t.Fatalf("load after the drain: %+v %v", load, err)
	}
	if _, err := b.Execute(ctx, "s3", "hi", nil); !errors.Is(err, hotplex.ErrCapacityExceeded) {
		t.Fatalf("a draining engine took a new session: %v", err)
	}
	if err := a.Adopt(ctx, "s1", ""); err != nil {
		t.Fatal(err)
	}
	if !owns(t, a, "s1") {
		t.Fatal("host-a should own s1 after adopting it")
	}
	back, err := a.Execute(ctx, "s1", "recall", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Resumed || back.Text != "history: apples | pears | recall" {
		t.Fatalf("back on host-a: resumed %v, text %q", back.Resumed, back.Text)
	}
}

func TestPlacementCallsWithoutPlacement(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	if !owns(t, e, "anything") {
		t.Fatal("without placement every session is the engine's")
	}
	if err := e.Adopt(ctx, "s", ""); !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("adopt: %v", err)
	}
	if released, err := e.Release(ctx, "s"); released || !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("release: %v %v", released, err)
	}
	if ids, err := e.Drain(ctx, time.Second); ids != nil || !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("drain: %v %v", ids, err)
	}
	if _, err := e.Drain(ctx, -time.Second); !errors.Is(err, hotplex.ErrInvalidArgument) {
		t.Fatalf("negative deadline: %v", err)
	}
	load, err := e.Load()
	if err != nil || load.Sessions != 0 || load.FreeSlots == 0 || load.Draining {
		t.Fatalf("load: %+v %v", load, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.Adopt(cancelled, "s", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled adopt: %v", err)
	}
	if _, err := e.Drain(cancelled, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled drain: %v", err)
	}
	_ = e.Close()
	if _, err := e.Owns("s"); !errors.Is(err, hotplex.ErrEngineClosed) {
		t.Fatalf("owns after close: %v", err)
	}
	if _, err := e.Load(); !errors.Is(err, hotplex.ErrEngineClosed) {
		t.Fatalf("load after close: %v", err)
	}
}

func TestPlacementOptionsOnTheWire(t *testing.T) {
	js, err := json.Marshal(hotplex.PlacementOptions{Owner: "host-a", Store: "/shared", LeaseTTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"owner": "host-a", "store": "/shared", "lease_ttl": 1.5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("wire %s", js)
	}
	// A bad owner is the core's ErrInvalidConfig naming the option.
	_, err = hotplex.NewEngine(hotplex.EngineOptions{
		Binary:    referenceAgent(t),
		Placement: &hotplex.PlacementOptions{Owner: "two words", Store: t.TempDir()},
	})
	if !errors.Is(err, hotplex.ErrInvalidConfig) {
		t.Fatalf("bad owner: %v", err)
	}
}
