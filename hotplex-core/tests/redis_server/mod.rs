//! A `redis-server` of one test, for the tests of `RedisStore`
//! (`redis_store.rs`, `store_contract.rs`, and the reference agent's
//! `placement.rs`): started from `PATH` on a free port of 127.0.0.1,
//! without persistence, and killed on drop. Without
//! `redis-server`, [`Server::start`] prints a note and gives `None`, and
//! the test passes, so a developer machine without Redis still passes;
//! `tests/run-all.sh` installs it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotplex_core::placement::RedisStore;

/// A `redis-server` of this test, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Its working directory (removed on drop).
    pub dir: PathBuf,
}

impl Server {
    /// A fresh server, or `None` (after a note) when `redis-server` is not
    /// installed.
    pub fn start() -> Option<Server> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("redis-server not found: skipped");
            return None;
        }
        // The port is free when asked but could be taken before the server
        // binds it: try a few.
        for _ in 0..5 {
            if let Some(s) = Server::start_on(free_port()) {
                return Some(s);
            }
        }
        panic!("redis-server did not start");
    }

    fn start_on(port: u16) -> Option<Server> {
        let dir = std::env::temp_dir().join(format!(
            "hotplex-redis-{}-{port}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None; // the port was taken meanwhile; dropped below
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        server.stop();
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A store of one "host".
    pub fn store(&self) -> RedisStore {
        RedisStore::new(&self.url()).unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port of 127.0.0.1 nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
