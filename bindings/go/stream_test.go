package hotplex_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

func TestStreamYieldsEventsInOrderThenTheTurn(t *testing.T) {
	e := newEngine(t, nil)
	var types []string
	var turn *hotplex.Turn
	for ev, err := range e.Stream(context.Background(), "s", "hello", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if turn != nil {
			t.Fatalf("an event after the turn: %+v", ev)
		}
		types = append(types, ev.Type)
		turn = ev.Turn
	}
	if got := strings.Join(types, ","); got != "session_start,answer,session_stats,"+hotplex.EventTurn {
		t.Fatalf("events: %s", got)
	}
	if turn == nil || turn.Text != "echo: hello" || len(turn.Events) != 3 {
		t.Fatalf("turn: %+v", turn)
	}
}

func TestStreamEndsWithTheTurnsError(t *testing.T) {
	e := newEngine(t, nil)
	var last error
	n := 0
	for _, err := range e.Stream(context.Background(), "s", "fail", nil) {
		n++
		last = err
	}
	if !errors.Is(last, hotplex.ErrTurnFailed) || n < 2 {
		t.Fatalf("after %d pairs: %v", n, last)
	}
	// A blocked prompt: its danger_block event, then ErrDangerBlocked.
	var types []string
	for ev, err := range e.Stream(context.Background(), "s", "rm -rf /", nil) {
		types = append(types, ev.Type)
		last = err
	}
	if !errors.Is(last, hotplex.ErrDangerBlocked) || types[0] != "danger_block" {
		t.Fatalf("blocked prompt: %v %v", types, last)
	}
}

// hot runs a turn and checks that it ran on the session's process.
func hot(t *testing.T, e *hotplex.Engine, pid int) time.Duration {
	t.Helper()
	start := time.Now()
	turn, err := e.Execute(context.Background(), "s", "next", nil)
	if err != nil || turn.Text != "echo: next" || turn.ColdStart || turn.PID != pid {
		t.Fatalf("the next turn is not hot: %+v %v", turn, err)
	}
	return time.Since(start)
}

func TestStreamCancelledContextInterruptsTheTurn(t *testing.T) {
	e := newEngine(t, nil)
	first, err := e.Execute(context.Background(), "s", "hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var last error
	events := 0
	for ev, err := range e.Stream(ctx, "s", "stall:5000", nil) {
		if err != nil {
			last = err
			continue
		}
		events++
		if ev.Type == "session_start" {
			// From another goroutine, as a server's request would end.
			time.AfterFunc(100*time.Millisecond, cancel)
		}
	}
	took := time.Since(start)
	if !errors.Is(last, context.Canceled) || events != 1 {
		t.Fatalf("after %d events: %v", events, last)
	}
	// Well before the 5 s stall (generous: the machine may be loaded).
	if took > 3*time.Second {
		t.Fatalf("the cancelled stream took %v", took)
	}
	hot(t, e, first.PID)
}

func TestStreamBreakingOutOfTheLoopCancelsTheTurn(t *testing.T) {
	e := newEngine(t, nil)
	first, err := e.Execute(context.Background(), "s", "hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range e.Stream(context.Background(), "s", "stall:5000", nil) {
		if err != nil || ev.Type != "session_start" {
			t.Fatalf("first pair: %+v %v", ev, err)
		}
		break
	}
	// Had the turn kept running, this one would queue behind the stall.
	if took := hot(t, e, first.PID); took > 3*time.Second {
		t.Fatalf("the next turn took %v", took)
	}
}

func TestStreamAlreadyCancelledContextStartsNothing(t *testing.T) {
	e := newEngine(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for _, err := range e.Stream(ctx, "s", "hello", nil) {
		n++
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("pair %d: %v", n, err)
		}
	}
	if n != 1 {
		t.Fatalf("%d pairs", n)
	}
	if infos, _ := e.Sessions(); len(infos) != 0 {
		t.Fatalf("sessions: %+v", infos)
	}
}

func TestStreamEndsWhenTheEngineIsClosed(t *testing.T) {
	e := newEngine(t, nil)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var last error
		for ev, err := range e.Stream(context.Background(), "s", "stall:5000", nil) {
			if ev.Type == "session_start" {
				close(started)
			}
			last = err
		}
		done <- last
	}()
	<-started
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, hotplex.ErrEngineClosed) && !errors.Is(err, hotplex.ErrSessionDead) {
			t.Fatalf("stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after Close")
	}
}

func TestStreamWithPartialMessagesYieldsDeltasThatAddUpToTheAnswer(t *testing.T) {
	e := newEngine(t, func(o *hotplex.EngineOptions) { o.PartialMessages = true })
	var deltas []string
	var answer string
	for ev, err := range e.Stream(context.Background(), "live", "a reply worth streaming", nil) {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "answer_delta":
			deltas = append(deltas, ev.Data["text"].(string))
		case "answer":
			answer = ev.Data["text"].(string)
		case hotplex.EventTurn:
			if ev.Turn.FirstDeltaMs == nil || *ev.Turn.FirstDeltaMs <= 0 {
				t.Errorf("first_delta_ms = %v", ev.Turn.FirstDeltaMs)
			}
		}
	}
	if len(deltas) < 3 || strings.Join(deltas, "") != answer {
		t.Fatalf("deltas %q do not add up to %q", deltas, answer)
	}
	off := false
	turn, err := e.Execute(context.Background(), "live", "hi", &hotplex.TurnOptions{PartialMessages: &off})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range turn.Events {
		if ev.Type == "answer_delta" {
			t.Fatal("a turn that switched deltas off got one")
		}
	}
}
