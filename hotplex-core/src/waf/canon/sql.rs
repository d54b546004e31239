//! SQL given to database clients (`psql -c`, `sqlite3 DB "..."`, a heredoc
//! piped into `mysql`, ...), recorded as [`crate::waf::Scope::Code`] texts
//! `sql STATEMENT` so that rules can judge `DROP TABLE` and friends.
//!
//! String literals are blanked first: `SELECT 'DROP TABLE users'` is data,
//! not a statement, and must never match.

use std::ops::Range;

use super::{Canonical, Item};

/// Database clients whose statements are judged as SQL ([`crate::waf::Scope::Code`] texts `sql ...`).
const DB_CLIENTS: &[&str] = &[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "sqlite",
    "duckdb",
    "sqlcmd",
    "clickhouse-client",
    "clickhouse",
    "cockroach",
    "mongo",
    "mongosh",
    "cqlsh",
    "snowsql",
    "bq",
    "pgcli",
    "mycli",
    "litecli",
    "usql",
    "influx",
    // redis-cli reads commands on stdin; they are judged like statements.
    "redis-cli",
];

/// Whether `name` (a command word's basename) is a database client.
pub(super) fn is_db_client(name: &str) -> bool {
    DB_CLIENTS.contains(&name)
}

/// Collects the SQL a database client is given and records each statement,
/// with string literals blanked so that data never matches.
pub(super) fn push_sql(
    out: &mut Canonical,
    argv: &[String],
    stdin: Option<&str>,
    span: &Range<usize>,
) {
    let mut sql: Vec<String> = Vec::new();
    let mut positional = 0usize;
    let mut k = 1;
    while k < argv.len() {
        let a = argv[k].as_str();
        let value_flags = [
            "-execute",
            "-c",
            "--command",
            "-e",
            "--execute",
            "--eval",
            "-q",
            "--query",
            "-Q",
            "-cmd",
        ];
        if value_flags.contains(&a) {
            if let Some(v) = argv.get(k + 1) {
                sql.push(v.clone());
            }
            k += 2;
            continue;
        }
        if let Some((flag, v)) = a.split_once('=').filter(|_| a.starts_with('-')) {
            if value_flags.contains(&flag) {
                sql.push(v.to_owned());
            }
        } else if !a.starts_with('-') {
            positional += 1;
            // sqlite3/duckdb DB "SQL": the second operand is SQL.
            if positional >= 2
                && matches!(
                    argv[0].as_str(),
                    "sqlite3" | "sqlite" | "duckdb" | "litecli"
                )
            {
                sql.push(a.to_owned());
            }
            if matches!(argv[0].as_str(), "mongo" | "mongosh") && a.contains('(') {
                sql.push(a.to_owned());
            }
        }
        k += 1;
    }
    if let Some(body) = stdin {
        sql.push(body.to_owned());
    }
    for text in sql {
        for stmt in blank_sql_strings(&text).split(';') {
            let stmt = stmt.trim();
            if !stmt.is_empty() {
                out.codes.push(Item {
                    text: format!("sql {stmt}"),
                    span: span.clone(),
                });
            }
        }
    }
}

/// Replaces the contents of SQL string literals (`'...'`) with nothing.
fn blank_sql_strings(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    for c in sql.chars() {
        if c == '\'' {
            in_str = !in_str;
            out.push(c);
        } else if !in_str {
            out.push(c);
        }
    }
    out
}
