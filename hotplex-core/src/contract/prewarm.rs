//! Spare processes: `EngineOptions.prewarm` and [`crate::Engine::prewarm`].
//!
//! A *spare* is an agent process started before any session needs it, with
//! a provider session id of its own, in a profile's workdir and with the
//! profile's session options, and left idle once it has done its start
//! work (loaded, answered the opening `initialize`). A turn that begins a
//! new conversation (a session id with no conversation to resume or fork)
//! whose workdir and session options equal a profile's *claims* a spare:
//! the session takes the spare's process and provider session id, and its
//! first turn is written to a process that is already running instead of
//! paying the agent's cold start. The CLI fixes a process's session id and
//! working directory when it starts (`tests/e2e/FACTS.md`, section w), so
//! a spare serves exactly one workdir and one set of options.
//!
//! Spares count toward `max_sessions`: they are started only into free
//! slots, and a new session that needs a slot stops a spare before it
//! evicts an idle session. They are refilled in the background, never
//! more at once than the free cold-start slots (`max_concurrent_starts`),
//! and a spare that dies is replaced after a delay that grows while spares
//! keep dying (so a broken agent does not spin).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::session::SessionOptions;
use crate::{Error, Result};

/// One kind of spare process the engine keeps ready.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrewarmProfile {
    /// How many spares of this profile to keep started. `0` removes the
    /// profile (and stops its spares) in [`crate::Engine::prewarm`].
    pub spares: usize,
    /// The workdir of the sessions these spares serve (resolved like a
    /// turn's: relative to the engine's `default_workdir`, created if
    /// missing, under the allowed roots). Unset: the engine's
    /// `default_workdir`, where a session's first turn runs when it names
    /// none.
    #[schemars(with = "Option<String>")]
    pub workdir: Option<PathBuf>,
    /// The session options of the sessions these spares serve: a new
    /// session claims a spare only when its first turn's `session` equals
    /// these (unset on both sides counts as equal). Unset: no session
    /// options (the engine's).
    pub session: Option<SessionOptions>,
}

impl PrewarmProfile {
    /// A profile from its wire form, as bindings pass it to
    /// [`crate::Engine::prewarm`]: `{"spares": 2, "workdir": "/srv/app",
    /// "session": {...}}` (absent or `null`: the default). Fails with
    /// [`Error::InvalidConfig`] naming the option, as
    /// [`super::EngineOptions::from_json`] does.
    pub fn from_json(v: &Value) -> Result<PrewarmProfile> {
        let p: PrewarmProfile = super::options::from_wire(v, "prewarm")?;
        p.validate()?;
        Ok(p)
    }

    /// Checks the profile's session options (errors name them
    /// `prewarm.session.<option>`).
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.session {
            s.validate().map_err(|e| match e {
                Error::InvalidConfig(m) => Error::InvalidConfig(format!("prewarm.{m}")),
                other => other,
            })?;
        }
        Ok(())
    }

    /// The session options a matching session has: unset means none.
    pub fn session_options(&self) -> SessionOptions {
        self.session.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_reads_its_wire_form_and_rejects_unknown_keys() {
        let p: PrewarmProfile = serde_json::from_value(serde_json::json!({
            "spares": 2, "workdir": "/srv/app", "session": {"model": "m"}
        }))
        .unwrap();
        assert_eq!(p.spares, 2);
        assert_eq!(p.session_options().model.as_deref(), Some("m"));
        assert!(serde_json::from_value::<PrewarmProfile>(serde_json::json!({"count": 1})).is_err());
        let bad = PrewarmProfile {
            session: Some(SessionOptions {
                max_turns: Some(0),
                ..SessionOptions::default()
            }),
            ..PrewarmProfile::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("prewarm.session.max_turns"), "{e}");
        let wire = PrewarmProfile::from_json(&serde_json::json!({"spares": 1, "workdir": null}));
        assert_eq!(wire.unwrap().spares, 1);
        assert!(PrewarmProfile::from_json(&serde_json::json!({"spares": -1})).is_err());
    }
}
