//! The README's containment example: an agent (here `sleep`) under its
//! supervisor, killed with its whole tree.

use hotplex_core::proc::{Contained, SpawnOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> hotplex_core::Result<()> {
    let mut agent = Contained::spawn(SpawnOptions::new("sleep").arg("30")).await?;
    println!("pid {} in mode {:?}", agent.pid(), agent.mode());
    let _stdout = agent.take_stdout(); // a tokio pipe
    let report = agent.kill().await?; // the ladder; returns once the tree is empty
    println!("{report:?}");
    Ok(())
}
