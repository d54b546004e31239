package hotplex_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	hotplex "github.com/hotplex/hotplex/bindings/go"
)

// Interactive turns through Go (issue 19), against the reference agent: the
// agent asks a question or proposes a plan and waits; the host answers with
// AnswerQuestion / ApprovePlan. The core's rules are tested in Rust
// (tests/reference-agent/tests/interactive.rs); these prove the Go shapes.

func TestAQuestionIsAnsweredAfterTheTurnTimeoutWouldHaveRunOut(t *testing.T) {
	e := newEngine(t, nil)
	ctx := context.Background()
	var text string
	opts := &hotplex.TurnOptions{Timeout: 300 * time.Millisecond}
	for ev, err := range e.Stream(ctx, "q", "askmulti:Which sizes? S | M | L", opts) {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "ask_user_question":
			questions, _ := ev.Data["questions"].([]any)
			q, _ := questions[0].(map[string]any)
			if q["question"] != "Which sizes?" || q["multi_select"] != true {
				t.Fatalf("question: %v", ev.Data)
			}
			id, _ := ev.Data["question_id"].(string)
			if err := e.AnswerQuestion(ctx, "q", id, map[string]any{"Q1": []string{}}); !errors.Is(err, hotplex.ErrInvalidAnswer) {
				t.Fatalf("an empty answer: %v", err)
			}
			time.Sleep(time.Second) // past the turn's timeout
			if err := e.AnswerQuestion(ctx, "q", id, map[string]any{"Which sizes?": []string{"S", "L"}}); err != nil {
				t.Fatal(err)
			}
		case hotplex.EventTurn:
			text = ev.Turn.Text
		}
	}
	if !strings.Contains(text, `"Which sizes?"="S, L"`) {
		t.Fatalf("answer: %q", text)
	}
	if err := e.AnswerQuestion(ctx, "q", "toolu_x", []string{"S"}); !errors.Is(err, hotplex.ErrQuestionNotFound) {
		t.Fatalf("no question: %v", err)
	}
}

func TestAPlanIsRejectedRevisedAndApprovedIntoAcceptEdits(t *testing.T) {
	e := newEngine(t, func(o *hotplex.EngineOptions) { o.PermissionMode = "plan" })
	ctx := context.Background()
	var plans []string
	var text string
	for ev, err := range e.Stream(ctx, "p", "plan:# Plan A", nil) {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "exit_plan_mode":
			plan, _ := ev.Data["plan"].(string)
			plans = append(plans, plan)
			if len(plans) == 1 {
				err = e.ApprovePlan(ctx, "p", false, "add a test step", "")
			} else {
				err = e.ApprovePlan(ctx, "p", true, "", "acceptEdits")
			}
			if err != nil {
				t.Fatal(err)
			}
		case hotplex.EventTurn:
			text = ev.Turn.Text
		}
	}
	if len(plans) != 2 || plans[1] != "# Plan A\nRevised after: add a test step" {
		t.Fatalf("plans: %q", plans)
	}
	if text != "plan approved after 1 rejections; mode: acceptEdits" {
		t.Fatalf("answer: %q", text)
	}
	if got := turnText(t, e, "p", "mode?", nil); got != "mode: acceptEdits" {
		t.Fatalf("mode: %q", got)
	}
}

func TestAnUnansweredQuestionFailsWithErrQuestionTimeout(t *testing.T) {
	e := newEngine(t, nil)
	opts := &hotplex.TurnOptions{QuestionTimeout: 300 * time.Millisecond}
	_, err := e.Execute(context.Background(), "t", "ask:Which color? Red | Blue", opts)
	if !errors.Is(err, hotplex.ErrQuestionTimeout) {
		t.Fatalf("unanswered: %v", err)
	}
}
