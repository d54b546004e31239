package hotplex

/*
#include <stdbool.h>
#include <stdint.h>
#include "hotplex.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"sync"
)

// EventTurn is the Type of the last event Stream yields for a turn that
// succeeded; its Turn field holds the turn.
const EventTurn = "turn"

// errStopped ends run when the consumer stopped taking events.
var errStopped = errors.New("hotplex: the consumer stopped the stream")

// Stream runs one turn on session sessionID (started or resumed on first
// use) as a sequence to range over:
//
//	for ev, err := range engine.Stream(ctx, "chat-42", prompt, nil) {
//		if err != nil {
//			return err // the turn failed, or ctx.Err()
//		}
//		if ev.Type == hotplex.EventTurn {
//			fmt.Println(ev.Turn.Text)
//		}
//	}
//
// It yields the turn's events in order, each with a nil error, and then
// exactly one more pair: (an event of Type EventTurn carrying the Turn,
// nil) when the turn succeeded, or (a zero Event, the error) when it
// failed. The errors are Execute's (ErrTurnTimeout, ErrSessionDead, ...;
// for a prompt the WAF blocks, a "danger_block" event, then
// ErrDangerBlocked).
//
// Cancelling ctx interrupts the turn (the agent is interrupted, then after
// the engine's InterruptGrace its process tree is killed; after a clean
// interrupt the session stays hot): the sequence stops yielding events and
// ends with ctx.Err(). Stopping the loop early (break, return) cancels the
// turn the same way. The turn starts when the loop begins: every range over
// the returned sequence runs a new turn. The loop body runs on the ranging
// goroutine, so it may block; the agent's output waits meanwhile. A stream
// outlives Close: its turn ends with an error (ErrEngineClosed or
// ErrSessionDead).
func (e *Engine) Stream(ctx context.Context, sessionID, prompt string, opts *TurnOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		turn, err := e.run(ctx, sessionID, prompt, opts, func(ev Event) bool { return yield(ev, nil) })
		switch {
		case errors.Is(err, errStopped):
		case err != nil:
			yield(Event{}, err)
		default:
			yield(Event{Type: EventTurn, Turn: turn}, nil)
		}
	}
}

// run starts a turn and hands each event to each (false: stop, cancelling
// the turn, and return errStopped), then returns the turn. Cancelling ctx
// cancels the turn and returns ctx.Err().
//
// The events are read with a blocking hotplex_turn_stream_next on this
// goroutine (no polling); a cancelled ctx wakes it through
// hotplex_turn_stream_cancel, which the C ABI allows from any thread while
// another one reads.
func (e *Engine) run(ctx context.Context, sessionID, prompt string, opts *TurnOptions, each func(Event) bool) (*Turn, error) {
	if opts == nil {
		opts = &TurnOptions{}
	}
	tjs, err := wire(*opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stream *C.hotplex_turn_stream
	ip, in := cString(sessionID)
	pp, pn := cString(prompt)
	tp, tn := cString(string(tjs))
	if err := e.use(func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_start(e.e, ip, in, pp, pn, tp, tn, &stream))
		})
	}); err != nil {
		return nil, err
	}
	// The cancel may run on ctx's goroutine at any time until the stream is
	// freed; the lock keeps it from running during or after the free.
	var mu sync.Mutex
	freed := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !freed {
			C.hotplex_turn_stream_cancel(stream)
		}
	})
	defer func() {
		stop()
		mu.Lock()
		defer mu.Unlock()
		freed = true
		// Freeing the stream before the end cancels the turn.
		C.hotplex_turn_stream_free(stream)
	}()
	for ctx.Err() == nil {
		var ev *C.char
		if err := call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_turn_stream_next(stream, -1, &ev))
		}); err != nil {
			return nil, err
		}
		if ev == nil {
			break
		}
		var event Event
		if err := json.Unmarshal(jsonString(ev), &event); err != nil {
			return nil, err
		}
		if !each(event) {
			return nil, errStopped
		}
	}
	if ctx.Err() != nil {
		// Do not wait for the AfterFunc to get scheduled.
		C.hotplex_turn_stream_cancel(stream)
	}
	var tj *C.char
	if err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_turn_stream_finish(stream, &tj)) }); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	turn := &Turn{}
	if err := json.Unmarshal(jsonString(tj), turn); err != nil {
		return nil, err
	}
	return turn, nil
}
