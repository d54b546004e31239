package hotplex

/*
#include <stdbool.h>
#include "hotplex.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"time"
)

// Placement across hosts (EngineOptions.Placement): engines on several
// hosts share a store; a session's turns belong to the engine holding its
// lease, and its conversation follows it from host to host. A turn on a
// session another host holds fails with ErrOwnedElsewhere, whose
// Error.Detail names the owner:
//
//	var he *hotplex.Error
//	if errors.As(err, &he) && errors.Is(err, hotplex.ErrOwnedElsewhere) {
//		var d struct{ Owner string `json:"owner"` }
//		_ = json.Unmarshal(he.Detail, &d) // route the turn to d.Owner
//	}

// EngineLoad is an engine's load, for a balancer that places sessions
// across hosts (Engine.Load).
type EngineLoad struct {
	// Sessions is the number of sessions in the pool.
	Sessions int `json:"sessions"`
	// Busy is the number of sessions running a turn.
	Busy int `json:"busy"`
	// Queued is the number of turns waiting behind a running one, over all
	// sessions.
	Queued int `json:"queued"`
	// FreeSlots is how many more sessions the engine takes before it must
	// evict (MaxSessions minus sessions and spares).
	FreeSlots int `json:"free_slots"`
	// Spares is the number of spare processes kept for new conversations.
	Spares int `json:"spares"`
	// AgentMemoryBytes is the resident memory of every agent process tree
	// (sessions and spares), in bytes.
	AgentMemoryBytes uint64 `json:"agent_memory_bytes"`
	// Draining is true once Drain was called: the engine takes no new
	// session.
	Draining bool `json:"draining"`
}

// Owns reports whether session sessionID's turns belong to this engine:
// without Placement always; with it, while this engine holds the session's
// current lease (false for a session not taken here yet, and once another
// host took it over). It reads the lease file: quick.
func (e *Engine) Owns(sessionID string) (bool, error) {
	var owns C.bool
	ip, in := cString(sessionID)
	err := e.use(func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_owns(e.e, ip, in, &owns))
		})
	})
	return err == nil && bool(owns), err
}

// Adopt takes session sessionID for this engine before its first turn here
// (Placement only): its lease, and its conversation from the store,
// written where the local agent finds it (in workdir, or with "" the
// session's usual workdir), so that the next turn resumes it. Turns take a
// session on their own too; adopting first says at once whether the
// session can be had. It fails with ErrOwnedElsewhere while another host
// holds the session (Error.Detail names the owner) and ErrInvalidConfig
// without Placement. When ctx ends first it returns ctx.Err() (the
// adoption itself still completes).
func (e *Engine) Adopt(ctx context.Context, sessionID, workdir string) error {
	ip, in := cString(sessionID)
	wp, wn := cString(workdir)
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_adopt(e.e, ip, in, wp, wn))
		})
	})
}

// Release lets session sessionID go (Placement only), so that another host
// can take it up at once: its running turn is interrupted, queued turns
// fail, its process is stopped, its transcript saved to the store and its
// lease released. It reports whether this engine held the session. It
// fails with ErrInvalidConfig without Placement and ErrFenced when the
// lease was lost meanwhile (released all the same). When ctx ends first it
// returns ctx.Err() (the release itself still completes).
func (e *Engine) Release(ctx context.Context, sessionID string) (bool, error) {
	var released C.bool
	ip, in := cString(sessionID)
	err := e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_release(e.e, ip, in, &released))
		})
	})
	return err == nil && bool(released), err
}

// Drain prepares the engine for a shutdown or a move (Placement only):
// from now on it takes no new session (their turns fail with
// ErrCapacityExceeded), running and queued turns get deadline to finish,
// then every session it holds is released as by Release. It returns the
// ids released, sorted. A negative deadline is ErrInvalidArgument;
// without Placement it fails with ErrInvalidConfig. When ctx ends first it
// returns ctx.Err() (the drain itself still completes).
func (e *Engine) Drain(ctx context.Context, deadline time.Duration) ([]string, error) {
	out := make(chan []string, 1)
	err := e.blocking(ctx, func() error {
		var p *C.char
		if err := call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_drain(e.e, C.double(deadline.Seconds()), &p))
		}); err != nil {
			return err
		}
		var ids []string
		if err := json.Unmarshal(jsonString(p), &ids); err != nil {
			return err
		}
		out <- ids
		return nil
	})
	if err != nil {
		return nil, err
	}
	return <-out, nil
}

// Load returns the engine's load, for a balancer: sessions, busy ones,
// queued turns, free slots, spares, the agents' memory, and whether it is
// draining. It works with or without Placement.
func (e *Engine) Load() (EngineLoad, error) {
	var out EngineLoad
	err := e.withJSON(func(p **C.char) C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_load(e.e, p))
	}, &out)
	return out, err
}
