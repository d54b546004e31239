//! The `hotplex-reference-agent` binary; everything is in the library
//! (`hotplex_reference_agent::run`, documented there).

fn main() {
    hotplex_reference_agent::run(std::env::args().skip(1));
}
