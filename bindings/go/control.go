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
)

// The live controls act on a session's running agent process, between turns
// or during one, without restarting it. Each blocks until the agent
// answered (at most EngineOptions.ControlTimeout, then ErrControlFailed)
// or ctx ends (then it returns ctx.Err(); the control itself still
// completes). They fail with ErrSessionNotFound for a session not in the
// pool, ErrUnsupported when the agent's version lacks the control, and
// ErrEngineClosed after Close.

// blocking runs a blocking C call with the engine held open, and returns
// early with ctx.Err() when ctx ends first (the call then finishes on its
// own goroutine, which also frees what it returns).
func (e *Engine) blocking(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- e.use(fn) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// controlJSON runs a live control that writes a JSON object and decodes it.
func (e *Engine) controlJSON(ctx context.Context, fn func(**C.char) C.hotplex_status) (map[string]any, error) {
	out := make(chan map[string]any, 1)
	err := e.blocking(ctx, func() error {
		var p *C.char
		if err := call(func() C.hotplex_status { return fn(&p) }); err != nil {
			return err
		}
		var v map[string]any
		if err := json.Unmarshal(jsonString(p), &v); err != nil {
			return err
		}
		out <- v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return <-out, nil
}

// Interrupt interrupts session sessionID's running turn, if any: that turn
// fails with ErrTurnTimeout ("interrupted by the host") and the process
// stays hot for the next one. It reports whether a turn was running.
func (e *Engine) Interrupt(ctx context.Context, sessionID string) (bool, error) {
	var was C.bool
	ip, in := cString(sessionID)
	err := e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_interrupt(e.e, ip, in, &was))
		})
	})
	return err == nil && bool(was), err
}

// SetModel switches session sessionID's model ("" : the agent's default)
// on its running process; the session keeps it across restarts, and a
// session without a process takes it at its next start.
func (e *Engine) SetModel(ctx context.Context, sessionID, model string) error {
	ip, in := cString(sessionID)
	mp, mn := cString(model)
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_set_model(e.e, ip, in, mp, mn))
		})
	})
}

// SetPermissionMode switches session sessionID's permission mode
// ("default", "acceptEdits", "plan", "bypassPermissions", ...) like
// SetModel. An empty mode fails with ErrInvalidArgument.
func (e *Engine) SetPermissionMode(ctx context.Context, sessionID, mode string) error {
	ip, in := cString(sessionID)
	mp, mn := cString(mode)
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_set_permission_mode(e.e, ip, in, mp, mn))
		})
	})
}

// ContextUsage returns how full session sessionID's context window is, as
// its agent reports it: {"totalTokens": n, "maxTokens": n, "percentage":
// x, "categories": [{"name": ..., "tokens": n}, ...]} (numbers as
// float64). It needs a running process (ErrSessionDead otherwise).
func (e *Engine) ContextUsage(ctx context.Context, sessionID string) (map[string]any, error) {
	ip, in := cString(sessionID)
	return e.controlJSON(ctx, func(p **C.char) C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_context_usage(e.e, ip, in, p))
	})
}

// McpStatus returns the state of session sessionID's MCP servers (the
// engine's Tools servers among them), as its agent reports it:
// {"mcpServers": [{"name": "host", "status": "connected"}, ...]}. It needs
// a running process.
func (e *Engine) McpStatus(ctx context.Context, sessionID string) (map[string]any, error) {
	ip, in := cString(sessionID)
	return e.controlJSON(ctx, func(p **C.char) C.hotplex_status {
		return C.hotplex_status(C.hotplex_engine_mcp_status(e.e, ip, in, p))
	})
}

// ResetSession makes session sessionID forget its conversation: its next
// turn starts a new one (the new conversation's id is recorded like a
// resume marker, so it holds for every engine sharing the StateDir). Turns
// already queued on the session run first, in the old conversation; a
// running process is then stopped. With forgetTranscript the old
// conversation's transcript is deleted too (best effort). It works whether
// or not the session is in the pool.
func (e *Engine) ResetSession(ctx context.Context, sessionID string, forgetTranscript bool) error {
	ip, in := cString(sessionID)
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_reset_session(e.e, ip, in, C.bool(forgetTranscript)))
		})
	})
}

// ForkSession makes session newID a copy of session sessionID's
// conversation: newID's first turn resumes it under a new conversation id
// (the agent's --fork-session), in the same workdir, and from then on the
// two continue separately. It starts nothing and returns at once. It fails
// with ErrSessionNotFound when sessionID has no conversation yet, and with
// ErrInvalidArgument when newID is sessionID or already in the pool.
func (e *Engine) ForkSession(ctx context.Context, sessionID, newID string) error {
	return e.ForkSessionAt(ctx, sessionID, newID, "")
}

// ForkSessionAt is ForkSession with the copy ending at message atMessage
// (the MessageUuid of one of sessionID's turns; "" copies the whole
// conversation): the turns after it are left out of the fork, the original
// keeps them. An atMessage that is not a message id is ErrInvalidArgument.
func (e *Engine) ForkSessionAt(ctx context.Context, sessionID, newID, atMessage string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ip, in := cString(sessionID)
	np, nn := cString(newID)
	ap, an := cString(atMessage)
	return e.use(func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_fork_session(e.e, ip, in, np, nn, ap, an))
		})
	})
}

// Prewarm adds, changes or removes a spare-process profile (see
// PrewarmProfile): the engine keeps profile.Spares agent processes started
// for new conversations in profile.Workdir with profile.Session. A profile
// for the same workdir and options is replaced; Spares 0 removes it. It
// returns at once (spares start in the background) and fails with
// ErrInvalidConfig for bad options or a workdir outside AllowedRoots.
func (e *Engine) Prewarm(ctx context.Context, profile PrewarmProfile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := json.Marshal(profile)
	if err != nil {
		return err
	}
	text := string(js)
	p, n := cString(text)
	return e.use(func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_prewarm(e.e, p, n))
		})
	})
}

// AnswerQuestion answers question questionID (Data["question_id"] of an
// "ask_user_question" event) that session sessionID's agent waits on, from
// any goroutine, however long after the event: the turn's timeout does not
// run while a question waits (EngineOptions.QuestionTimeout does). answers
// maps each question (its text, its "header", or its index as a string) to
// the chosen label, or to a []string of labels for a "multi_select"
// question (sent joined with ", "); a slice answers the questions in order.
// A label need not be an option (the person's own words reach the agent).
// It fails with ErrQuestionNotFound when no such question waits (answered,
// cancelled by Interrupt or StopSession, timed out) and ErrInvalidAnswer
// for an answer that names no question, picks several options of a
// single-choice question or is empty (the question then still waits).
func (e *Engine) AnswerQuestion(ctx context.Context, sessionID, questionID string, answers any) error {
	js, err := json.Marshal(answers)
	if err != nil {
		return &Error{Status: StatusInvalidAnswer, Message: "answers: " + err.Error()}
	}
	ip, in := cString(sessionID)
	qp, qn := cString(questionID)
	ap, an := cString(string(js))
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_answer_question(e.e, ip, in, qp, qn, ap, an))
		})
	})
}

// ApprovePlan approves (approved true) or rejects the plan session
// sessionID's agent proposed (an "exit_plan_mode" event), from any
// goroutine, however long after it. Approved, the agent leaves plan mode
// and carries the plan out in permission mode mode (e.g. "acceptEdits",
// kept by the session like SetPermissionMode; "": the mode it had before
// plan mode). Rejected, the agent reads feedback and usually proposes a
// revised plan (a new "exit_plan_mode" event) in the same turn. It fails
// with ErrQuestionNotFound when no plan waits and ErrInvalidAnswer for a
// mode with a rejection.
func (e *Engine) ApprovePlan(ctx context.Context, sessionID string, approved bool, feedback, mode string) error {
	ip, in := cString(sessionID)
	fp, fn := cString(feedback)
	mp, mn := cString(mode)
	return e.blocking(ctx, func() error {
		return call(func() C.hotplex_status {
			return C.hotplex_status(C.hotplex_engine_approve_plan(e.e, ip, in, C.bool(approved), fp, fn, mp, mn))
		})
	})
}
