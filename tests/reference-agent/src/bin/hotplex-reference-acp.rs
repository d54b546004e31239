//! The `hotplex-reference-acp` binary: the reference ACP agent; everything
//! is in the library (`hotplex_reference_agent::acp::run`, documented there).

fn main() {
    hotplex_reference_agent::acp::run(std::env::args().skip(1));
}
