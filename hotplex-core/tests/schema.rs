//! The committed JSON Schema of the contract (`schema/hotplex.schema.json`)
//! must be what the code generates: every binding's tests read that file,
//! so a stale copy would let a binding drift unnoticed.
//!
//! Regenerate after changing a contract type:
//! `HOTPLEX_BLESS=1 cargo test -p hotplex-core --test schema`.

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/hotplex.schema.json")
}

#[test]
fn the_committed_schema_matches_the_contract() {
    let generated = hotplex_core::contract::schema::schema_text();
    let path = committed();
    if std::env::var_os("HOTPLEX_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the schema");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is stale: run `HOTPLEX_BLESS=1 cargo test -p hotplex-core --test schema` and commit it",
        path.display()
    );
}

#[test]
fn the_schema_lists_every_record_field_and_the_error_table() {
    let schema = hotplex_core::contract::schema::schema();
    let defs = &schema["$defs"];
    for name in [
        "EngineOptions",
        "TurnOptions",
        "Event",
        "Turn",
        "SessionInfo",
        "SessionStats",
        "Verdict",
    ] {
        assert!(defs.get(name).is_some(), "$defs lacks {name}");
    }
    let turn = serde_json::to_value(hotplex_core::Turn {
        text: String::new(),
        cold_start: false,
        resumed: false,
        duration: Default::default(),
        queued: Default::default(),
        stats: Default::default(),
        events: Vec::new(),
        pid: 0,
        provider_session_id: String::new(),
        structured_output: None,
        message_uuid: String::new(),
    })
    .unwrap();
    // Every key a serialized Turn has is declared (flattened stats included).
    let declared = defs["Turn"]["properties"].as_object().unwrap();
    for key in turn.as_object().unwrap().keys() {
        assert!(declared.contains_key(key), "Turn schema lacks {key}");
    }
    let errors = schema["x-hotplex-errors"].as_array().unwrap();
    assert_eq!(errors.len(), hotplex_core::ErrorCode::ALL.len());
}
