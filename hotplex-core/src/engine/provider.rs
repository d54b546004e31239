//! The provider layer: the boundary between the pool and the protocol a
//! session's agent speaks.
//!
//! The pool ([`super::Engine`]) knows sessions, queues, capacity, idle
//! eviction, spares and statistics; it does not know how an agent is
//! talked to. For each session it picks a [`Provider`] (the session's
//! `provider` option, else the engine's) and [`launch`]es that provider's
//! actor with the same parts and channels: the job queue (turns, resets),
//! live controls, the stop signal and the `done` signal. Everything else
//! the pool does is the same for every provider.
//!
//! Shared by the actors ([`super::agent`]), written once: starting the
//! contained process (program, arguments, environment, limits, state
//! directory), reading its stdout line by line within `max_line_bytes`,
//! writing with a deadline, reaping a process that died and killing one
//! with the ladder (trees confirmed empty), exit reporting (metrics and
//! lifecycle records), a turn's event stream within its budget, turn
//! outcomes and the session's totals, stray and bad lines, idle reading
//! between turns, and failing queued work when the actor stops. The WAF's
//! tool check and the host's permission-handler call go through
//! [`super::host`] for both.
//!
//! Per protocol:
//!
//! | | `claude-code` (`engine::session`) | `acp` (`engine::acp`) |
//! |---|---|---|
//! | command line | `claude --print --input-format stream-json ...` built from the options | `binary` + `args` as given |
//! | start | hooks registered with `initialize`; `--session-id` / `--resume` / `--fork-session` | `initialize` (fs and terminal offered), `session/new` or `session/load` |
//! | a turn | a user message with a fresh uuid, read to its `result` | `session/prompt`, read to its answer |
//! | events | `protocol::tracker` | `protocol::acp::tracker` |
//! | interrupt | the `interrupt` control request | `session/cancel` (pending permissions answered `cancelled`, terminals killed) |
//! | resume | the marker says the CLI confirmed the provider session id in this workdir | the marker keeps the agent's session id; loaded when the agent advertises `loadSession` |
//! | tool screening | `PreToolUse` hook and `can_use_tool` | `session/request_permission`, and hotplex's own `fs/*` and `terminal/*` |
//! | live controls, questions, spares, forks | yes | interrupt only; the rest is `Unsupported` (refused up front where the pool can tell) |

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::acp::AcpActor;
use super::session::{Actor, ControlCmd, Job, SessionCtx};
use super::state::State;
pub(crate) use crate::contract::Provider;
use crate::contract::{SessionOptions, TurnOptions};
use crate::{Error, Result};

/// What the pool hands a new session's actor, whatever its provider.
pub(crate) struct ActorParts {
    pub id: String,
    pub psid: String,
    pub ctx: Arc<SessionCtx>,
    pub state: Arc<Mutex<State>>,
    /// Signals of the processes this session replaces (it starts none of
    /// its own before they are gone).
    pub previous: Vec<watch::Receiver<bool>>,
    /// The conversation a fork copies, and the message it ends at.
    pub fork: (Option<String>, Option<String>),
    pub controls: mpsc::UnboundedReceiver<ControlCmd>,
    pub jobs: mpsc::UnboundedReceiver<Job>,
    pub stop: watch::Receiver<bool>,
    pub done: watch::Sender<bool>,
}

/// Starts the actor of a session of `provider` on `handle`, in `span`.
pub(crate) fn launch(
    provider: Provider,
    parts: ActorParts,
    handle: &tokio::runtime::Handle,
    span: tracing::Span,
) {
    let ActorParts {
        id,
        psid,
        ctx,
        state,
        previous,
        fork,
        controls,
        jobs,
        stop,
        done,
    } = parts;
    match provider {
        Provider::ClaudeCode => {
            let actor = Actor::new(id, psid, ctx, state, previous, fork, controls);
            handle.spawn(tracing::Instrument::instrument(
                actor.run(jobs, stop, done),
                span,
            ));
        }
        Provider::Acp => {
            let actor = AcpActor::new((id, ctx, state), psid, previous, fork.0, controls);
            handle.spawn(tracing::Instrument::instrument(
                actor.run(jobs, stop, done),
                span,
            ));
        }
    }
}

/// The provider a turn's session runs with: the one it has in the pool
/// (`running`), else the turn's session option, else the engine's. A turn
/// that names another provider than its session's running one is refused.
pub(crate) fn for_turn(
    engine: Provider,
    running: Option<Provider>,
    session: Option<&SessionOptions>,
    id: &str,
) -> Result<Provider> {
    let asked = session.and_then(|s| s.provider);
    match (running, asked) {
        (Some(r), Some(a)) if r != a => Err(Error::InvalidConfig(format!(
            "session.provider: session {id:?} runs the {r} provider; stop it (stop_session) before it takes {a}"
        ))),
        (Some(r), _) => Ok(r),
        (None, a) => Ok(a.unwrap_or(engine)),
    }
}

/// Refuses what a turn of an `acp` session asks for that only Claude Code
/// does (see [`crate::contract::provider`]).
pub(crate) fn check_turn(provider: Provider, turn: &TurnOptions) -> Result<()> {
    if provider != Provider::Acp {
        return Ok(());
    }
    if let Some(s) = &turn.session {
        s.refuse_claude_only()?;
    }
    crate::contract::provider::refuse_claude_only(
        &crate::contract::to_value(turn),
        &crate::contract::to_value(&TurnOptions::default()),
        crate::contract::provider::CLAUDE_ONLY_TURN_OPTIONS,
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_its_provider_and_a_turn_may_choose_one_for_a_new_session() {
        let acp = SessionOptions {
            provider: Some(Provider::Acp),
            ..SessionOptions::default()
        };
        let c = Provider::ClaudeCode;
        assert_eq!(for_turn(c, None, None, "s").unwrap(), c);
        assert_eq!(for_turn(c, None, Some(&acp), "s").unwrap(), Provider::Acp);
        assert_eq!(for_turn(Provider::Acp, Some(c), None, "s").unwrap(), c);
        let e = for_turn(c, Some(c), Some(&acp), "s")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("session.provider") && e.contains("stop_session"),
            "{e}"
        );
    }

    #[test]
    fn an_acp_turn_refuses_claude_only_options_by_name() {
        let turn = TurnOptions {
            session: Some(SessionOptions {
                max_turns: Some(3),
                ..SessionOptions::default()
            }),
            ..TurnOptions::default()
        };
        let e = check_turn(Provider::Acp, &turn).unwrap_err().to_string();
        assert!(e.contains("session.max_turns"), "{e}");
        assert!(check_turn(Provider::ClaudeCode, &turn).is_ok());
        let images = TurnOptions {
            images: vec![crate::contract::ImageInput {
                media_type: "image/png".into(),
                data: "AAAA".into(),
            }],
            ..TurnOptions::default()
        };
        let e = check_turn(Provider::Acp, &images).unwrap_err().to_string();
        assert!(e.contains("images"), "{e}");
    }
}
