//! README's metric table is generated from `telemetry::METRICS`, the same
//! table registration reads its help texts from: a metric added, renamed or
//! relabelled in the code fails this test until README says so too.
//!
//! Regenerate: `HOTPLEX_BLESS=1 cargo test -p hotplex-core --test metrics_table`.

use hotplex_core::telemetry::METRICS;

const BEGIN: &str = "<!-- metrics:begin";
const END: &str = "<!-- metrics:end -->";

fn table() -> String {
    let mut t = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for m in METRICS {
        let labels: Vec<String> = m.labels.iter().map(|l| format!("`{l}`")).collect();
        let labels = if labels.is_empty() {
            "".to_owned()
        } else {
            labels.join(", ")
        };
        t.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            m.name,
            m.kind.as_str(),
            labels,
            m.help
        ));
    }
    t
}

#[test]
fn the_readme_metric_table_is_generated_from_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find(BEGIN)
        .expect("README has a metrics:begin marker");
    let body = start + readme[start..].find("-->\n").expect("marker end") + 4;
    let end = readme.find(END).expect("README has a metrics:end marker");
    let want = table();
    if std::env::var_os("HOTPLEX_BLESS").is_some() {
        let new = format!("{}{}{}", &readme[..body], want, &readme[end..]);
        std::fs::write(path, new).expect("write README.md");
        return;
    }
    assert!(
        readme[body..end] == want,
        "README's metric table is stale: run `HOTPLEX_BLESS=1 cargo test -p hotplex-core --test metrics_table`"
    );
}
