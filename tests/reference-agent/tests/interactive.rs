//! Interactive turns through the pool: the agent asks the person a question
//! (`AskUserQuestion`) or proposes a plan (`ExitPlanMode`) through
//! `can_use_tool`, as Claude Code does (FACTS w, x), and the host answers
//! whenever it likes, through the engine or its permission handler.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotplex_core::contract::Question;
use hotplex_core::{
    Engine, EngineOptions, Error, Event, Permission, PermissionHandler, ToolRequest, TurnOptions,
    TurnStream,
};
use serde_json::json;

mod support;
use support::{options, timeout_ms, turn, TempDir};

/// Reads `stream` up to the first event named `name` (which must come).
async fn next_named(stream: &mut TurnStream, name: &str) -> Event {
    while let Some(e) = stream.next_event().await {
        if e.name() == name {
            return e;
        }
    }
    panic!("the turn ended without a {name} event");
}

/// The id and questions of an `ask_user_question` event.
fn question(e: Event) -> (String, Vec<Question>) {
    match e {
        Event::AskUserQuestion {
            question_id,
            questions,
            ..
        } => (question_id, questions),
        other => panic!("not a question: {other:?}"),
    }
}

/// The plan text of an `exit_plan_mode` event.
fn plan(e: Event) -> String {
    match e {
        Event::ExitPlanMode { plan, .. } => plan,
        other => panic!("not a plan: {other:?}"),
    }
}

/// Options whose agents start in plan mode.
fn plan_mode(dir: &TempDir) -> EngineOptions {
    EngineOptions {
        permission_mode: Some("plan".into()),
        ..options(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_waits_past_the_turn_timeout_for_an_answer_given_later() {
    let dir = TempDir::new("ask-late");
    let engine = Engine::new(options(&dir)).unwrap();
    // 300 ms would end the turn long before the answer comes at 1 s.
    let mut stream = engine.start("s", "ask:Which color? Red | Blue", &timeout_ms(300));
    let (id, questions) = question(next_named(&mut stream, "ask_user_question").await);
    assert_eq!(questions.len(), 1);
    let q = &questions[0];
    assert_eq!(
        (q.question.as_str(), q.header.as_str()),
        ("Which color?", "Q1")
    );
    assert!(!q.multi_select);
    let labels: Vec<&str> = q.options.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["Red", "Blue"]);
    assert_eq!(q.options[1].description, "about Blue");
    tokio::time::sleep(Duration::from_secs(1)).await;
    engine
        .answer_question("s", &id, &json!({"Which color?": "Blue"}))
        .await
        .unwrap();
    let t = stream.finish().await.unwrap();
    assert_eq!(
        t.text,
        "tool said: Your questions have been answered: \"Which color?\"=\"Blue\". You can now continue with these answers in mind."
    );
    assert!(
        !t.events
            .iter()
            .any(|e| matches!(e, Event::PermissionRequest { .. })),
        "a question is not a permission request"
    );
    // The question came in order: after its tool_use, before its result.
    let names: Vec<&str> = t.events.iter().map(Event::name).collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("tool_use") < at("ask_user_question"));
    assert!(at("ask_user_question") < at("tool_result"));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_questions_are_answered_by_text_header_or_index_and_choices_are_joined() {
    let dir = TempDir::new("ask-multi");
    let engine = Engine::new(options(&dir)).unwrap();
    let prompt = "ask:Which color? Red | Blue\naskmulti:Which sizes? S | M | L";
    let mut stream = engine.start("s", prompt, &TurnOptions::default());
    let (id, questions) = question(next_named(&mut stream, "ask_user_question").await);
    assert_eq!(questions.len(), 2);
    assert!(questions[1].multi_select);
    engine
        .answer_question("s", &id, &json!({"Q1": "Red", "1": ["S", "L"]}))
        .await
        .unwrap();
    let t = stream.finish().await.unwrap();
    assert!(
        t.text
            .contains("\"Which color?\"=\"Red\", \"Which sizes?\"=\"S, L\""),
        "{}",
        t.text
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_unknown_questions_or_with_unknown_keys_are_refused_and_the_question_still_waits(
) {
    let dir = TempDir::new("ask-bad");
    let engine = Engine::new(options(&dir)).unwrap();
    let none = engine
        .answer_question("s", "toolu_1", &json!({"Which color?": "Red"}))
        .await;
    assert!(
        matches!(none, Err(Error::QuestionNotFound(_))),
        "a session not in the pool has no question: {none:?}"
    );
    let mut stream = engine.start("s", "ask:Which color? Red | Blue", &TurnOptions::default());
    let (id, _) = question(next_named(&mut stream, "ask_user_question").await);
    let unknown = engine
        .answer_question("s", "toolu_nope", &json!({"Which color?": "Red"}))
        .await;
    assert!(
        matches!(unknown, Err(Error::QuestionNotFound(_))),
        "{unknown:?}"
    );
    let bad_key = engine
        .answer_question("s", &id, &json!({"Which shape?": "Round"}))
        .await;
    match bad_key {
        Err(Error::InvalidAnswer(m)) => assert!(m.contains("Which shape?"), "{m}"),
        other => panic!("expected InvalidAnswer, got {other:?}"),
    }
    let two = engine
        .answer_question("s", &id, &json!({"Which color?": ["Red", "Blue"]}))
        .await;
    assert!(matches!(two, Err(Error::InvalidAnswer(_))), "{two:?}");
    let plan = engine.approve_plan("s", true, None, None).await;
    assert!(matches!(plan, Err(Error::QuestionNotFound(_))), "{plan:?}");
    engine
        .answer_question("s", &id, &json!(["Red"]))
        .await
        .unwrap();
    let t = stream.finish().await.unwrap();
    assert!(t.text.contains("\"Which color?\"=\"Red\""), "{}", t.text);
    let again = engine.answer_question("s", &id, &json!(["Blue"])).await;
    assert!(
        matches!(again, Err(Error::QuestionNotFound(_))),
        "answered once: {again:?}"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_question_ends_the_turn_with_question_timeout_and_the_session_stays_hot() {
    let dir = TempDir::new("ask-timeout");
    let engine = Engine::new(options(&dir)).unwrap();
    let pid = turn(&engine, "s", "warm up").await.pid;
    let opts = TurnOptions {
        question_timeout: Some(Duration::from_millis(300)),
        ..TurnOptions::default()
    };
    let mut stream = engine.start("s", "ask:Which color? Red | Blue", &opts);
    let (id, _) = question(next_named(&mut stream, "ask_user_question").await);
    match stream.finish().await {
        Err(Error::QuestionTimeout(m)) => assert!(m.contains(&id), "{m}"),
        other => panic!("expected QuestionTimeout, got {other:?}"),
    }
    let late = engine.answer_question("s", &id, &json!(["Red"])).await;
    assert!(matches!(late, Err(Error::QuestionNotFound(_))), "{late:?}");
    assert_eq!(
        turn(&engine, "s", "hi").await.pid,
        pid,
        "the process stayed hot"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_question_timeout_answer_is_what_the_agent_reads_when_nobody_answers() {
    let dir = TempDir::new("ask-default");
    let engine = Engine::new(EngineOptions {
        question_timeout: Duration::from_millis(300),
        question_timeout_answer: Some("Nobody answered; pick for me.".into()),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "ask:Which color? Red | Blue").await;
    assert_eq!(t.text, "tool said: Nobody answered; pick for me.");
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, Event::AskUserQuestion { .. })));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_cancels_a_waiting_question_and_the_next_turn_runs_on_the_same_process() {
    let dir = TempDir::new("ask-interrupt");
    let engine = Engine::new(options(&dir)).unwrap();
    let pid = turn(&engine, "s", "warm up").await.pid;
    let mut stream = engine.start("s", "ask:Which color? Red | Blue", &TurnOptions::default());
    let (id, _) = question(next_named(&mut stream, "ask_user_question").await);
    assert!(engine.interrupt("s").await.unwrap());
    match stream.finish().await {
        Err(Error::TurnTimeout(m)) => assert!(m.contains("interrupted by the host"), "{m}"),
        other => panic!("expected the interrupt's TurnTimeout, got {other:?}"),
    }
    let late = engine.answer_question("s", &id, &json!(["Red"])).await;
    assert!(matches!(late, Err(Error::QuestionNotFound(_))), "{late:?}");
    let t = turn(&engine, "s", "hi").await;
    assert_eq!((t.pid, t.text.as_str()), (pid, "echo: hi"));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_session_cancels_a_waiting_question() {
    let dir = TempDir::new("ask-stop");
    let engine = Engine::new(options(&dir)).unwrap();
    let mut stream = engine.start("s", "ask:Which color? Red | Blue", &TurnOptions::default());
    let (id, _) = question(next_named(&mut stream, "ask_user_question").await);
    assert!(engine.stop_session("s").await);
    assert!(matches!(stream.finish().await, Err(Error::SessionDead(_))));
    let late = engine.answer_question("s", &id, &json!(["Red"])).await;
    assert!(matches!(late, Err(Error::QuestionNotFound(_))), "{late:?}");
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_plan_is_revised_then_approved_into_the_mode_the_host_names() {
    let dir = TempDir::new("plan");
    let engine = Engine::new(plan_mode(&dir)).unwrap();
    let mut stream = engine.start("s", "plan:# Plan A\\n1. touch a", &timeout_ms(300));
    match next_named(&mut stream, "plan_mode").await {
        Event::PlanMode {
            active,
            permission_mode,
        } => assert!(active && permission_mode == "plan"),
        other => panic!("{other:?}"),
    }
    let first = plan(next_named(&mut stream, "exit_plan_mode").await);
    assert_eq!(first, "# Plan A\n1. touch a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    engine
        .approve_plan("s", false, Some("add a test step"), None)
        .await
        .unwrap();
    let second = plan(next_named(&mut stream, "exit_plan_mode").await);
    assert_eq!(second, format!("{first}\nRevised after: add a test step"));
    let bad = engine
        .approve_plan("s", false, None, Some("acceptEdits"))
        .await;
    assert!(matches!(bad, Err(Error::InvalidAnswer(_))), "{bad:?}");
    engine
        .approve_plan("s", true, None, Some("acceptEdits"))
        .await
        .unwrap();
    match next_named(&mut stream, "plan_mode").await {
        Event::PlanMode {
            active,
            permission_mode,
        } => assert!(!active && permission_mode == "acceptEdits"),
        other => panic!("{other:?}"),
    }
    let t = stream.finish().await.unwrap();
    assert_eq!(
        t.text,
        "plan approved after 1 rejections; mode: acceptEdits"
    );
    let next = turn(&engine, "s", "mode?").await;
    assert_eq!(next.text, "mode: acceptEdits");
    assert_eq!(next.pid, t.pid, "the same hot process");
    assert!(
        !next.events.iter().any(|e| e.name() == "plan_mode"),
        "no longer in plan mode"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_plan_approval_returns_to_the_mode_before_plan_mode() {
    let dir = TempDir::new("plan-back");
    let engine = Engine::new(options(&dir)).unwrap();
    turn(&engine, "s", "warm up").await;
    engine
        .set_permission_mode("s", "acceptEdits")
        .await
        .unwrap();
    engine.set_permission_mode("s", "plan").await.unwrap();
    let mut stream = engine.start("s", "plan:# Plan B", &TurnOptions::default());
    next_named(&mut stream, "exit_plan_mode").await;
    engine.approve_plan("s", true, None, None).await.unwrap();
    let t = stream.finish().await.unwrap();
    assert_eq!(
        t.text,
        "plan approved after 0 rejections; mode: acceptEdits"
    );
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_handler_may_answer_a_question_but_a_plain_allow_leaves_it_to_the_person() {
    let dir = TempDir::new("ask-handler");
    let asked = Arc::new(AtomicUsize::new(0));
    let seen = asked.clone();
    let handler: PermissionHandler = Arc::new(move |r: &ToolRequest<'_>| {
        seen.fetch_add(1, Ordering::SeqCst);
        if r.tool_name != "AskUserQuestion" {
            return Permission::allow();
        }
        let q = r.input["questions"][0]["question"].as_str().unwrap_or("");
        if q.starts_with("Auto") {
            let mut input = r.input.clone();
            input["answers"] = json!({q: "Yes"});
            Permission::Allow {
                updated_input: Some(input),
                updated_permissions: None,
            }
        } else {
            // Allow everything, answer nothing: the person answers.
            Permission::allow()
        }
    });
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(handler),
        ..options(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "ask:Auto answer? Yes | No").await;
    assert!(t.text.contains("\"Auto answer?\"=\"Yes\""), "{}", t.text);
    assert!(
        !t.events.iter().any(|e| e.name() == "ask_user_question"),
        "answered by the handler: nothing to show"
    );
    let mut stream = engine.start("s", "ask:Human answer? Yes | No", &TurnOptions::default());
    let (id, _) = question(next_named(&mut stream, "ask_user_question").await);
    engine
        .answer_question("s", &id, &json!({"Human answer?": "No"}))
        .await
        .unwrap();
    let t = stream.finish().await.unwrap();
    assert!(t.text.contains("\"Human answer?\"=\"No\""), "{}", t.text);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_handler_deny_rejects_a_plan_with_its_message() {
    let dir = TempDir::new("plan-handler");
    let handler: PermissionHandler = Arc::new(|r: &ToolRequest<'_>| {
        if r.tool_name == "ExitPlanMode" {
            Permission::deny("plans need a ticket number")
        } else {
            Permission::allow()
        }
    });
    let engine = Engine::new(EngineOptions {
        permission_handler: Some(handler),
        ..plan_mode(&dir)
    })
    .unwrap();
    let t = turn(&engine, "s", "plan:# Plan C").await;
    assert_eq!(t.text, "plan rejected: plans need a ticket number");
    assert!(!t.events.iter().any(|e| e.name() == "exit_plan_mode"));
    engine.close().await;
}
