//! The engine's Prometheus metrics (`prometheus-client`), one set per engine.
//!
//! [`METRICS`] is the one description of every family (name, type, labels,
//! meaning): registration takes each help text from it, and the README's
//! metric table is checked against it (`hotplex-core/tests/telemetry.rs`).
//!
//! Counters and histograms are updated where things happen (cheap atomic
//! adds); what is a *state* rather than an event (sessions by status, the
//! agents' resident memory) is read when the metrics are scraped, never on
//! the hot path. Label values are bounded: fixed enums, tool names folded
//! into a known set plus `other`, never a session id.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::contract::telemetry::{ExitReason, KillStage, StartMode, TurnOutcome, WafSource};
use crate::contract::{SessionStatus, Usage};
use crate::verdict::Verdict;

/// What kind of Prometheus family a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count (`_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl MetricKind {
    /// The OpenMetrics type name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// The description of one metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDoc {
    /// The family name as exposed (`hotplex_turns_total`,
    /// `hotplex_turn_duration_seconds`, ...).
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// What it measures (its `# HELP`).
    pub help: &'static str,
}

macro_rules! docs {
    ($($id:ident: $name:literal, $kind:ident, [$($l:literal),*], $help:literal;)+) => {
        $(const $id: MetricDoc = MetricDoc {
            name: $name, kind: MetricKind::$kind, labels: &[$($l),*], help: $help,
        };)+
        /// Every metric family of an engine, in registration order.
        pub const METRICS: &[MetricDoc] = &[$($id),+];
    };
}

docs! {
    SESSIONS: "hotplex_sessions", Gauge, ["status"],
        "Sessions in the pool by status (starting, ready, busy), read at scrape time";
    SPARES: "hotplex_spares", Gauge, ["status"],
        "Spare agent processes not yet claimed (EngineOptions.prewarm), by status (starting, ready), read at scrape time";
    SPARE_CLAIMS: "hotplex_spare_claims_total", Counter, [],
        "New conversations that took a spare process (their first turn skipped the cold start)";
    SPARE_MISSES: "hotplex_spare_misses_total", Counter, [],
        "New conversations that matched a prewarm profile but found no spare left (they started cold)";
    SESSION_STARTS: "hotplex_session_starts_total", Counter, ["mode"],
        "Agent processes started, fresh or resuming a conversation";
    SESSION_EXITS: "hotplex_session_exits_total", Counter, ["reason"],
        "Agent processes ended, by reason (idle, stopped, evicted, crashed, closed, start_failed)";
    CAPACITY_REJECTIONS: "hotplex_capacity_rejections_total", Counter, [],
        "Turns refused because every session slot held a busy session";
    TURNS: "hotplex_turns_total", Counter, ["outcome"],
        "Turns ended, by outcome (ok, failed, timeout, interrupted, cancelled, dead, blocked)";
    TURN_DURATION: "hotplex_turn_duration_seconds", Histogram, [],
        "Wall time of a turn from its start (after queueing) to its end";
    TURN_QUEUE: "hotplex_turn_queue_seconds", Histogram, [],
        "Time a turn waited behind earlier turns of its session";
    COLD_START: "hotplex_cold_start_seconds", Histogram, [],
        "Time from starting an agent process to its first line of output";
    FIRST_OUTPUT: "hotplex_first_output_seconds", Histogram, [],
        "Time from submitting a turn to the agent's first line for it (time to first token)";
    FIRST_DELTA: "hotplex_first_delta_seconds", Histogram, [],
        "Time from submitting a turn to its first answer or thinking delta (with partial messages)";
    TOKENS: "hotplex_tokens_total", Counter, ["kind"],
        "Tokens of finished turns (input, output, cache_read, cache_write)";
    COST: "hotplex_cost_usd_total", Counter, [],
        "Cost of finished turns in USD, as the agent reports it";
    TOOL_CALLS: "hotplex_tool_calls_total", Counter, ["tool"],
        "Tool calls of finished turns, by tool (known tool names, else other; appears with the first call)";
    BAD_LINES: "hotplex_agent_bad_lines_total", Counter, [],
        "Lines of agent output that could not be used (not JSON, too long)";
    STRAY_LINES: "hotplex_agent_stray_lines_total", Counter, [],
        "Lines of agent output that belonged to no turn (after a result, a second or late result), dropped";
    WAF_CHECKS: "hotplex_waf_checks_total", Counter, ["source"],
        "WAF checks the engine made, by what was judged (prompt, tool)";
    WAF_BLOCKS: "hotplex_waf_blocks_total", Counter, ["source", "category", "level"],
        "WAF checks that blocked, by source, rule category and level (appears with the first block)";
    WAF_CHECK: "hotplex_waf_check_seconds", Histogram, [],
        "Time of one WAF check made by the engine";
    KILL_LADDER: "hotplex_kill_ladder_total", Counter, ["stage"],
        "Agent process trees ended by the kill ladder, by the last step needed (eof, term, kill)";
    PROCESSES_KILLED: "hotplex_processes_killed_total", Counter, [],
        "Processes of agent trees that the kill ladder terminated or killed";
    AGENT_MEMORY: "hotplex_agent_memory_bytes", Gauge, [],
        "Resident memory of every agent process tree, read at scrape time";
    OBSERVER_DROPPED: "hotplex_observer_dropped_total", Counter, [],
        "Lifecycle records dropped because the observer's queue was full";
    BUILD: "hotplex_build_info", Gauge, ["version", "containment"],
        "The hotplex version and the containment mode of this host (always 1; a gauge, as Prometheus' own *_info metrics, so both text formats carry it)";
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Mode {
    mode: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tool {
    tool: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Block {
    source: &'static str,
    category: &'static str,
    level: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
    containment: &'static str,
}

/// Tool names kept as label values; any other tool counts as `other` (an
/// agent's MCP tools are unbounded).
const KNOWN_TOOLS: &[&str] = &[
    "Bash",
    "BashOutput",
    "Edit",
    "ExitPlanMode",
    "Glob",
    "Grep",
    "KillShell",
    "LS",
    "MultiEdit",
    "NotebookEdit",
    "Read",
    "Task",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
    "Write",
    "AskUserQuestion",
];

fn tool_label(name: &str) -> &'static str {
    KNOWN_TOOLS
        .iter()
        .find(|t| **t == name)
        .copied()
        .unwrap_or("other")
}

/// Buckets from 5 ms to about 11 minutes (doubling).
fn turn_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 18))
}

/// Buckets from 1 µs to about 33 ms (doubling).
fn waf_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 2.0, 16))
}

/// What the scrape-time collector reads from the engine.
pub(crate) trait LiveView: Send + Sync + std::fmt::Debug + 'static {
    /// Every session's status and agent pid.
    fn sessions(&self) -> Vec<(SessionStatus, Option<i32>)>;
    /// Every spare: whether it is ready (else starting), and its agent
    /// pid (`None` before its process is spawned).
    fn spares(&self) -> Vec<(bool, Option<i32>)>;
}

/// An engine's metric families. Cheap to update from any thread; clones
/// share their values.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    spare_claims: Counter,
    spare_misses: Counter,
    starts: Family<Mode, Counter>,
    exits: Family<Reason, Counter>,
    capacity_rejections: Counter,
    turns: Family<Outcome, Counter>,
    turn_duration: Histogram,
    turn_queue: Histogram,
    cold_start: Histogram,
    first_output: Histogram,
    first_delta: Histogram,
    tokens: Family<Kind, Counter>,
    cost: Counter<f64, AtomicU64>,
    tool_calls: Family<Tool, Counter>,
    bad_lines: Counter,
    stray_lines: Counter,
    waf_checks: Family<Source, Counter>,
    waf_blocks: Family<Block, Counter>,
    waf_check: Histogram,
    kill_ladder: Family<Stage, Counter>,
    processes_killed: Counter,
    pub(crate) observer_dropped: Counter,
    containment: &'static str,
}

impl Metrics {
    /// Families at zero; `observer_dropped` may be shared with a binding
    /// (see [`super::DropCounter`]).
    pub(crate) fn new(containment: &'static str, observer_dropped: Counter) -> Metrics {
        let metrics = Metrics {
            spare_claims: Counter::default(),
            spare_misses: Counter::default(),
            starts: Family::default(),
            exits: Family::default(),
            capacity_rejections: Counter::default(),
            turns: Family::default(),
            turn_duration: turn_buckets(),
            turn_queue: turn_buckets(),
            cold_start: turn_buckets(),
            first_output: turn_buckets(),
            first_delta: turn_buckets(),
            tokens: Family::default(),
            cost: Counter::default(),
            tool_calls: Family::default(),
            bad_lines: Counter::default(),
            stray_lines: Counter::default(),
            waf_checks: Family::default(),
            waf_blocks: Family::default(),
            waf_check: waf_buckets(),
            kill_ladder: Family::default(),
            processes_killed: Counter::default(),
            observer_dropped,
            containment,
        };
        // Every fixed label value exists from the start, at zero: the
        // families are visible before their first event, and rates work.
        for m in StartMode::ALL {
            let _ = metrics.starts.get_or_create(&Mode { mode: m.as_str() });
        }
        for r in ExitReason::ALL {
            let _ = metrics.exits.get_or_create(&Reason { reason: r.as_str() });
        }
        for o in TurnOutcome::ALL {
            let _ = metrics.turns.get_or_create(&Outcome {
                outcome: o.as_str(),
            });
        }
        for kind in ["input", "output", "cache_read", "cache_write"] {
            let _ = metrics.tokens.get_or_create(&Kind { kind });
        }
        for s in [WafSource::Prompt, WafSource::Tool] {
            let _ = metrics
                .waf_checks
                .get_or_create(&Source { source: s.as_str() });
        }
        for s in KillStage::ALL {
            let _ = metrics
                .kill_ladder
                .get_or_create(&Stage { stage: s.as_str() });
        }
        metrics
    }

    /// Registers every family into `reg`, whose prefix must be `hotplex`
    /// (the names in [`METRICS`] carry it), with the scrape-time collector
    /// reading `live`.
    pub(crate) fn register(&self, reg: &mut Registry, live: Arc<dyn LiveView>) {
        // `register` adds the unit and `_total`; the docs hold full names.
        fn base(doc: &MetricDoc, unit: Option<&str>) -> String {
            let n = doc.name.strip_prefix("hotplex_").unwrap_or(doc.name);
            let n = n.strip_suffix("_total").unwrap_or(n);
            match unit {
                Some(u) => n
                    .strip_suffix(u)
                    .unwrap_or(n)
                    .trim_end_matches('_')
                    .to_owned(),
                None => n.to_owned(),
            }
        }
        macro_rules! plain {
            ($doc:expr, $m:expr) => {
                reg.register(base(&$doc, None), $doc.help, $m.clone())
            };
        }
        macro_rules! seconds {
            ($doc:expr, $m:expr) => {
                reg.register_with_unit(
                    base(&$doc, Some("_seconds")),
                    $doc.help,
                    Unit::Seconds,
                    $m.clone(),
                )
            };
        }
        reg.register_collector(Box::new(Live {
            view: live.clone(),
            only: SESSIONS,
        }));
        reg.register_collector(Box::new(Live {
            view: live.clone(),
            only: SPARES,
        }));
        plain!(SPARE_CLAIMS, self.spare_claims);
        plain!(SPARE_MISSES, self.spare_misses);
        plain!(SESSION_STARTS, self.starts);
        plain!(SESSION_EXITS, self.exits);
        plain!(CAPACITY_REJECTIONS, self.capacity_rejections);
        plain!(TURNS, self.turns);
        seconds!(TURN_DURATION, self.turn_duration);
        seconds!(TURN_QUEUE, self.turn_queue);
        seconds!(COLD_START, self.cold_start);
        seconds!(FIRST_OUTPUT, self.first_output);
        seconds!(FIRST_DELTA, self.first_delta);
        plain!(TOKENS, self.tokens);
        plain!(COST, self.cost);
        plain!(TOOL_CALLS, self.tool_calls);
        plain!(BAD_LINES, self.bad_lines);
        plain!(STRAY_LINES, self.stray_lines);
        plain!(WAF_CHECKS, self.waf_checks);
        plain!(WAF_BLOCKS, self.waf_blocks);
        seconds!(WAF_CHECK, self.waf_check);
        plain!(KILL_LADDER, self.kill_ladder);
        plain!(PROCESSES_KILLED, self.processes_killed);
        reg.register_collector(Box::new(Live {
            view: live,
            only: AGENT_MEMORY,
        }));
        plain!(OBSERVER_DROPPED, self.observer_dropped);
        let build = Family::<Build, Gauge>::default();
        build
            .get_or_create(&Build {
                version: crate::VERSION,
                containment: self.containment,
            })
            .set(1);
        reg.register(base(&BUILD, None), BUILD.help, build);
    }

    pub(crate) fn session_started(&self, mode: StartMode) {
        self.starts
            .get_or_create(&Mode {
                mode: mode.as_str(),
            })
            .inc();
    }

    pub(crate) fn session_exited(&self, reason: ExitReason) {
        self.exits
            .get_or_create(&Reason {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A new conversation took a spare.
    pub(crate) fn spare_claimed(&self) {
        self.spare_claims.inc();
    }

    /// A new conversation matched a prewarm profile with no spare left.
    pub(crate) fn spare_missed(&self) {
        self.spare_misses.inc();
    }

    pub(crate) fn capacity_rejected(&self) {
        self.capacity_rejections.inc();
    }

    /// A turn ended; `times` (duration and queueing, seconds) for turns
    /// that started at all.
    pub(crate) fn turn_ended(&self, outcome: TurnOutcome, times: Option<(f64, f64)>) {
        self.turns
            .get_or_create(&Outcome {
                outcome: outcome.as_str(),
            })
            .inc();
        if let Some((duration, queued)) = times {
            self.turn_duration.observe(duration);
            self.turn_queue.observe(queued);
        }
    }

    pub(crate) fn cold_start(&self, seconds: f64) {
        self.cold_start.observe(seconds);
    }

    pub(crate) fn first_output(&self, seconds: f64) {
        self.first_output.observe(seconds);
    }

    pub(crate) fn first_delta(&self, seconds: f64) {
        self.first_delta.observe(seconds);
    }

    /// A finished turn's tokens, cost and tool calls.
    pub(crate) fn turn_work<'a>(
        &self,
        usage: &Usage,
        cost_usd: f64,
        tools: impl Iterator<Item = &'a str>,
    ) {
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_input_tokens),
            ("cache_write", usage.cache_creation_input_tokens),
        ] {
            self.tokens.get_or_create(&Kind { kind }).inc_by(n);
        }
        if cost_usd.is_finite() && cost_usd > 0.0 {
            self.cost.inc_by(cost_usd);
        }
        for t in tools {
            self.tool_calls
                .get_or_create(&Tool {
                    tool: tool_label(t),
                })
                .inc();
        }
    }

    pub(crate) fn bad_line(&self) {
        self.bad_lines.inc();
    }

    pub(crate) fn stray_line(&self) {
        self.stray_lines.inc();
    }

    pub(crate) fn waf_checked(&self, source: WafSource, v: &Verdict, seconds: f64) {
        let source = source.as_str();
        self.waf_checks.get_or_create(&Source { source }).inc();
        self.waf_check.observe(seconds);
        if v.blocked {
            self.waf_blocks
                .get_or_create(&Block {
                    source,
                    category: v.category.map_or("none", |c| c.as_str()),
                    level: v.level.as_str(),
                })
                .inc();
        }
    }

    pub(crate) fn killed(&self, stage: KillStage, processes: u64) {
        self.kill_ladder
            .get_or_create(&Stage {
                stage: stage.as_str(),
            })
            .inc();
        self.processes_killed.inc_by(processes);
    }
}

/// Values read at scrape time: sessions by status, agent memory.
#[derive(Debug)]
struct Live {
    view: Arc<dyn LiveView>,
    only: MetricDoc,
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.only == SPARES {
            let spares = self.view.spares();
            let family = Family::<Status, Gauge>::default();
            for (status, ready) in [("starting", false), ("ready", true)] {
                let n = spares.iter().filter(|(r, _)| *r == ready).count();
                family.get_or_create(&Status { status }).set(n as i64);
            }
            let m = encoder.encode_descriptor("spares", SPARES.help, None, family.metric_type())?;
            return family.encode(m);
        }
        let sessions = self.view.sessions();
        if self.only == SESSIONS {
            let family = Family::<Status, Gauge>::default();
            for status in [
                SessionStatus::Starting,
                SessionStatus::Ready,
                SessionStatus::Busy,
            ] {
                let n = sessions.iter().filter(|(s, _)| *s == status).count();
                family
                    .get_or_create(&Status {
                        status: status.as_str(),
                    })
                    .set(n as i64);
            }
            let m =
                encoder.encode_descriptor("sessions", SESSIONS.help, None, family.metric_type())?;
            family.encode(m)?;
        } else {
            // Spares hold memory too (a parked CLI is some 150-250 MB).
            let spares = self.view.spares();
            let pids: Vec<i32> = sessions
                .iter()
                .map(|(_, p)| *p)
                .chain(spares.into_iter().map(|(_, p)| p))
                .flatten()
                .collect();
            let bytes = ConstGauge::new(super::memory::tree_rss_bytes(&pids) as i64);
            let m = encoder.encode_descriptor(
                "agent_memory",
                AGENT_MEMORY.help,
                Some(&Unit::Bytes),
                bytes.metric_type(),
            )?;
            bytes.encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tools_fold_into_other() {
        assert_eq!(tool_label("Bash"), "Bash");
        assert_eq!(tool_label("mcp__evil__x"), "other");
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for d in METRICS {
            assert!(d.name.starts_with("hotplex_"), "{}", d.name);
            match d.kind {
                MetricKind::Counter => assert!(d.name.ends_with("_total"), "{}", d.name),
                MetricKind::Histogram => assert!(d.name.ends_with("_seconds"), "{}", d.name),
                MetricKind::Gauge => {}
            }
        }
    }
}

/// The engine's metrics as JSON: `[{"name", "type", "help", "samples":
/// [{"name", "labels": {..}, "value"}]}]`, read back from the OpenMetrics
/// text (for hosts that want numbers rather than text, e.g. Node's
/// `metricsSnapshot()`). Families keep their exposed names
/// (`hotplex_turns_total` is the family of sample `hotplex_turns_total`).
pub fn snapshot_from_text(text: &str) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut families: Vec<Value> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.push(json!({"name": name, "type": "unknown", "help": help, "samples": []}));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (_, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            if let Some(f) = families.last_mut() {
                f["type"] = Value::String(kind.to_owned());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (head, value) = line.rsplit_once(' ').unwrap_or((line, "0"));
            let (name, labels) = match head.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (head, ""),
            };
            let mut map = Map::new();
            for pair in split_labels(labels) {
                if let Some((k, v)) = pair.split_once('=') {
                    let v = v
                        .trim_matches('"')
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\");
                    map.insert(k.to_owned(), Value::String(v));
                }
            }
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            let sample = json!({"name": name, "labels": map, "value": value});
            if let Some(Value::Array(s)) = families.last_mut().map(|f| &mut f["samples"]) {
                s.push(sample);
            }
        }
    }
    // Families carry the names they are exposed under.
    for f in &mut families {
        let kind = f["type"].as_str().unwrap_or("").to_owned();
        let name = f["name"].as_str().unwrap_or("").to_owned();
        let exposed = match kind.as_str() {
            "counter" if !name.ends_with("_total") => format!("{name}_total"),
            "info" if !name.ends_with("_info") => format!("{name}_info"),
            _ => name,
        };
        f["name"] = Value::String(exposed);
    }
    Value::Array(families)
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn the_text_reads_back_as_families_and_samples() {
        let text = "# HELP hotplex_turns Turns.\n# TYPE hotplex_turns counter\nhotplex_turns_total{outcome=\"ok\"} 5\n# HELP hotplex_build Build.\n# TYPE hotplex_build info\nhotplex_build_info{version=\"0.1.0\",containment=\"a,b\"} 1\n# EOF\n";
        let s = snapshot_from_text(text);
        assert_eq!(s[0]["name"], "hotplex_turns_total");
        assert_eq!(s[0]["type"], "counter");
        assert_eq!(s[0]["samples"][0]["labels"]["outcome"], "ok");
        assert_eq!(s[0]["samples"][0]["value"], 5.0);
        assert_eq!(s[1]["name"], "hotplex_build_info");
        assert_eq!(s[1]["samples"][0]["labels"]["containment"], "a,b");
    }
}
