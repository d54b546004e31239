//! Questions and plans: `can_use_tool` requests that wait for a person.
//!
//! Claude Code asks the person through two tools whose permission request
//! *is* the question (verified on 2.1.197 and 2.1.332, `tests/e2e/FACTS.md`
//! sections w and x): `AskUserQuestion`, answered by allowing it with the
//! chosen labels added to its input (`answers`, keyed by question text), and
//! `ExitPlanMode`, answered by allowing it (the plan is approved; a
//! `setMode` permission update picks the mode that follows) or denying it
//! (the message is the person's feedback; the agent revises the plan). The
//! CLI never times these requests out.
//!
//! The session holds such a request as a [`Held`] until the host answers
//! (`Engine::answer_question`, `Engine::approve_plan`), the agent cancels it
//! (an interrupt), or `question_timeout` passes. This module turns a held
//! request into its event and a host's answer into the line the agent
//! reads, rejecting answers that would not reach the model as meant.

use serde_json::{json, Map, Value};

use crate::contract::{Event, Question, QuestionOption};
use crate::protocol::{self, tracker::TurnTracker};
use crate::{Error, Result};

/// What a held request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskKind {
    /// `AskUserQuestion`: questions with choices.
    Question,
    /// `ExitPlanMode`: a plan to approve or reject.
    Plan,
}

/// A question or plan the agent waits on.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The agent's request, answered once.
    pub request_id: String,
    /// The id the host answers with: the tool call's id (the request's
    /// own id if the agent named no tool call).
    pub id: String,
    /// What it asks.
    pub kind: AskKind,
    /// The tool's input as the agent sent it (the answer builds on it).
    pub input: Value,
}

impl Held {
    /// The held form of a `can_use_tool` request for `tool_name` (one of
    /// the [`protocol::is_interactive`] tools).
    pub(crate) fn new(request_id: &str, tool_name: &str, input: Value, context: &Value) -> Held {
        let id = context
            .get("tool_use_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(request_id);
        Held {
            request_id: request_id.to_owned(),
            id: id.to_owned(),
            kind: if tool_name == protocol::EXIT_PLAN_MODE {
                AskKind::Plan
            } else {
                AskKind::Question
            },
            input,
        }
    }

    /// Whether a permission handler's allow carries the answer itself: the
    /// chosen `answers` for a question; for a plan, an input or permission
    /// update (a plain allow leaves the request to the person, so that a
    /// handler allowing every tool does not answer for them).
    pub(crate) fn answered_by(
        &self,
        updated_input: Option<&Value>,
        updated_permissions: Option<&Value>,
    ) -> bool {
        match self.kind {
            AskKind::Question => {
                updated_input.is_some_and(|i| i.get("answers").is_some_and(Value::is_object))
            }
            AskKind::Plan => updated_input.is_some() || updated_permissions.is_some(),
        }
    }

    /// The event that shows the host what is asked. A plan the request
    /// leaves out (CLI 2.1.332 without a plan file) is taken from the tool
    /// call the tracker saw.
    pub(crate) fn event(&self, tracker: &TurnTracker) -> Event {
        match self.kind {
            AskKind::Question => Event::AskUserQuestion {
                question_id: self.id.clone(),
                tool_use_id: self.id.clone(),
                questions: questions(&self.input),
            },
            AskKind::Plan => {
                let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                let plan = text(&self.input, "plan")
                    .or_else(|| tracker.plan_input(&self.id).and_then(|i| text(i, "plan")))
                    .unwrap_or_default();
                Event::ExitPlanMode {
                    plan_id: self.id.clone(),
                    plan,
                    plan_file: text(&self.input, "planFilePath"),
                }
            }
        }
    }

    /// The answer to a question: `answers` maps a question (its text, its
    /// header or its index as a string) to a label, or to a list of labels
    /// for a multiple-choice question; a list answers the questions in
    /// order. Labels need not be among the options (the person's own
    /// text). Returns the `control_response` line.
    pub(crate) fn answer_line(&self, answers: &Value) -> Result<String> {
        if self.kind != AskKind::Question {
            return Err(Error::InvalidAnswer(format!(
                "{} is a plan: answer it with approve_plan",
                self.id
            )));
        }
        let asked = questions(&self.input);
        let pairs: Vec<(String, &Value)> = match answers {
            Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => {
                return Err(Error::InvalidAnswer(
                    "answers must be an object (question text, header or index -> label or list of labels) or a list in question order".into(),
                ))
            }
        };
        let mut chosen = Map::new();
        for (key, value) in pairs {
            if value.is_null() {
                continue;
            }
            let q = find_question(&asked, &key).ok_or_else(|| {
                let list: Vec<String> = asked.iter().map(|q| format!("{:?}", q.question)).collect();
                Error::InvalidAnswer(format!(
                    "{key:?} names no question of {} (its questions: {})",
                    self.id,
                    list.join(", ")
                ))
            })?;
            let label = label(q, value)?;
            if chosen
                .insert(q.question.clone(), Value::String(label))
                .is_some()
            {
                return Err(Error::InvalidAnswer(format!(
                    "the question {:?} is answered twice",
                    q.question
                )));
            }
        }
        if chosen.is_empty() {
            return Err(Error::InvalidAnswer("no question is answered".into()));
        }
        let mut input = self.input.clone();
        match input.as_object_mut() {
            Some(o) => {
                o.insert("answers".into(), Value::Object(chosen));
            }
            None => input = json!({"answers": chosen}),
        }
        Ok(protocol::allow_tool(&self.request_id, &input))
    }

    /// The answer to a plan: approved, with `mode` as the permission mode
    /// that follows (unset: the mode the session had before plan mode, as
    /// the CLI decides), or rejected with `feedback` for the agent.
    pub(crate) fn plan_line(
        &self,
        approved: bool,
        feedback: Option<&str>,
        mode: Option<&str>,
    ) -> Result<String> {
        if self.kind != AskKind::Plan {
            return Err(Error::InvalidAnswer(format!(
                "{} is a question: answer it with answer_question",
                self.id
            )));
        }
        if !approved {
            if mode.is_some() {
                return Err(Error::InvalidAnswer(
                    "a mode goes with an approval, not a rejection".into(),
                ));
            }
            let why = feedback
                .filter(|f| !f.trim().is_empty())
                .unwrap_or(REJECTED);
            return Ok(protocol::deny_tool(&self.request_id, why));
        }
        let update = match mode {
            Some(m) if m.trim().is_empty() => {
                return Err(Error::InvalidAnswer("mode must not be empty".into()))
            }
            Some(m) => Some(json!([{"type": "setMode", "mode": m, "destination": "session"}])),
            None => None,
        };
        Ok(protocol::allow_tool_with(
            &self.request_id,
            &self.input,
            update.as_ref(),
        ))
    }
}

/// What the agent reads for a plan rejected without feedback.
const REJECTED: &str = "The user rejected this plan. Ask what they want changed.";

/// The questions of an `AskUserQuestion` input (fields the agent left out
/// are empty).
fn questions(input: &Value) -> Vec<Question> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    input
        .get("questions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|q| Question {
            question: text(q, "question"),
            header: text(q, "header"),
            options: q
                .get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|o| QuestionOption {
                    label: text(o, "label"),
                    description: text(o, "description"),
                    preview: o.get("preview").and_then(Value::as_str).map(str::to_owned),
                })
                .collect(),
            multi_select: q.get("multiSelect").and_then(Value::as_bool) == Some(true),
        })
        .collect()
}

/// The question `key` names: its text first, then its header, then its
/// index.
fn find_question<'a>(asked: &'a [Question], key: &str) -> Option<&'a Question> {
    asked
        .iter()
        .find(|q| q.question == key)
        .or_else(|| {
            asked
                .iter()
                .find(|q| !q.header.is_empty() && q.header == key)
        })
        .or_else(|| key.parse::<usize>().ok().and_then(|i| asked.get(i)))
}

/// The answer text for `q`: a label, or labels joined with ", " (how the
/// CLI's own interface joins a multiple choice, FACTS w).
fn label(q: &Question, value: &Value) -> Result<String> {
    let bad = |what: &str| Err(Error::InvalidAnswer(format!("{:?}: {what}", q.question)));
    let labels: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => {
            let mut labels = Vec::new();
            for i in items {
                match i.as_str() {
                    Some(s) => labels.push(s),
                    None => return bad("a list of labels must hold only strings"),
                }
            }
            labels
        }
        _ => return bad("the answer must be a label or a list of labels"),
    };
    if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty()) {
        return bad("an answer must not be empty");
    }
    if labels.len() > 1 && !q.multi_select {
        return bad("only one option may be chosen (the question is not multi_select)");
    }
    Ok(labels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Held {
        let input = json!({"questions": [
            {"question": "Which color?", "header": "Q1", "multiSelect": false,
             "options": [{"label": "Red", "description": "about Red"}, {"label": "Blue", "description": "about Blue"}]},
            {"question": "Which sizes?", "header": "Q2", "multiSelect": true,
             "options": [{"label": "S", "description": "about S"}, {"label": "M"}, {"label": "L"}]},
        ]});
        Held::new(
            "r1",
            "AskUserQuestion",
            input,
            &json!({"tool_use_id": "toolu_1"}),
        )
    }

    fn response(line: &str) -> Value {
        let v: Value = serde_json::from_str(line).unwrap();
        v["response"]["response"].clone()
    }

    #[test]
    fn answers_are_keyed_by_question_text_and_lists_joined_with_comma_space() {
        let h = asked();
        assert_eq!(h.id, "toolu_1");
        for answers in [
            json!({"Which color?": "Blue", "Which sizes?": ["S", "L"]}),
            json!({"Q1": "Blue", "1": ["S", "L"]}),
            json!(["Blue", ["S", "L"]]),
        ] {
            let r = response(&h.answer_line(&answers).unwrap());
            assert_eq!(r["behavior"], "allow");
            assert_eq!(
                r["updatedInput"]["answers"],
                json!({"Which color?": "Blue", "Which sizes?": "S, L"})
            );
            assert_eq!(r["updatedInput"]["questions"], h.input["questions"]);
        }
    }

    #[test]
    fn answers_that_would_not_reach_the_model_are_rejected() {
        let h = asked();
        for bad in [
            json!({"Which shape?": "Round"}),
            json!({"Which color?": ["Red", "Blue"]}),
            json!({"Which color?": ""}),
            json!({"Which color?": 3}),
            json!({}),
            json!("Blue"),
            json!({"Which color?": "Red", "Q1": "Blue"}),
            json!(["Red", "S", "extra"]),
        ] {
            assert!(
                matches!(h.answer_line(&bad), Err(Error::InvalidAnswer(_))),
                "{bad} must be rejected"
            );
        }
        // The person's own text is an answer too (the CLI passes it on).
        assert!(h
            .answer_line(&json!({"Which color?": "Green please"}))
            .is_ok());
    }

    #[test]
    fn a_plan_is_approved_with_a_mode_or_rejected_with_feedback() {
        let h = Held::new(
            "r2",
            "ExitPlanMode",
            json!({"plan": "# Plan", "planFilePath": "/p.md"}),
            &json!({"tool_use_id": "toolu_2"}),
        );
        assert_eq!(h.kind, AskKind::Plan);
        let r = response(&h.plan_line(true, None, Some("acceptEdits")).unwrap());
        assert_eq!(r["behavior"], "allow");
        assert_eq!(r["updatedInput"]["plan"], "# Plan");
        assert_eq!(
            r["updatedPermissions"],
            json!([{"type": "setMode", "mode": "acceptEdits", "destination": "session"}])
        );
        let r = response(&h.plan_line(true, None, None).unwrap());
        assert!(r.get("updatedPermissions").is_none());
        let r = response(&h.plan_line(false, Some("add a test step"), None).unwrap());
        assert_eq!(
            (r["behavior"].as_str(), r["message"].as_str()),
            (Some("deny"), Some("add a test step"))
        );
        assert!(h.plan_line(false, None, Some("default")).is_err());
        assert!(h.plan_line(true, None, Some("")).is_err());
        assert!(h.answer_line(&json!(["x"])).is_err());
        assert!(asked().plan_line(true, None, None).is_err());
    }

    #[test]
    fn only_an_allow_that_carries_the_answer_answers_for_the_person() {
        let q = asked();
        assert!(!q.answered_by(None, None));
        assert!(!q.answered_by(Some(&q.input), None));
        assert!(q.answered_by(Some(&json!({"answers": {"Which color?": "Red"}})), None));
        let p = Held::new("r", "ExitPlanMode", json!({}), &json!({}));
        assert_eq!(p.id, "r");
        assert!(!p.answered_by(None, None));
        assert!(p.answered_by(None, Some(&json!([]))));
    }

    #[test]
    fn the_event_shows_the_questions_and_options() {
        let Event::AskUserQuestion {
            question_id,
            questions,
            ..
        } = asked().event(&TurnTracker::default())
        else {
            panic!("not a question event")
        };
        assert_eq!(question_id, "toolu_1");
        assert_eq!(questions.len(), 2);
        assert_eq!(questions[0].options[1].label, "Blue");
        assert_eq!(questions[0].options[1].description, "about Blue");
        assert!(questions[1].multi_select);
        assert_eq!(questions[1].options[1].description, "");
    }
}
