//! hotplex as the ACP agent's terminal: `terminal/create`, `output`,
//! `wait_for_exit`, `kill` and `release`, served by the engine.
//!
//! The actor screens a command with the WAF before it gets here. Each
//! terminal's command then runs as a contained process tree of its own
//! ([`crate::proc::Contained`], with the session's environment, limits and
//! state directory): whatever it starts, `setsid` daemons and double forks
//! included, is stopped when the command ends, when the agent kills or
//! releases the terminal, and when the session's process ends or the
//! session stops (and, like every contained tree, when the host dies).
//! Its stdout and stderr are kept together, at most `outputByteLimit`
//! bytes (the oldest output is dropped first, at a character boundary).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::proc::{Contained, SpawnOptions, StdioMode};
use crate::protocol::acp::{ExitStatus, RequestId};

/// Output kept when the agent names no `outputByteLimit`.
pub(crate) const DEFAULT_OUTPUT_BYTES: usize = 1 << 20;
/// The most output kept for one terminal, whatever the agent asks for.
pub(crate) const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Terminals one session may have at once (created and not released).
pub(crate) const MAX_TERMINALS: usize = 32;

/// A terminal's output: the newest bytes, within its limit.
#[derive(Debug, Default)]
struct Output {
    buf: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > self.limit {
            let mut cut = self.buf.len() - self.limit;
            // Never start inside a UTF-8 character.
            while cut < self.buf.len() && (self.buf[cut] & 0xC0) == 0x80 {
                cut += 1;
            }
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }
}

/// One terminal.
struct Terminal {
    output: Arc<Mutex<Output>>,
    exit: Arc<Mutex<Option<ExitStatus>>>,
    /// Tells the terminal's task to kill the command now.
    kill: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// A session's terminals; see the module docs.
pub(crate) struct Terminals {
    seq: u64,
    live: HashMap<String, Terminal>,
    /// Tasks of released terminals, which may still be stopping their tree.
    dying: Vec<JoinHandle<()>>,
    /// Terminal ids, as their commands end.
    exits_tx: mpsc::UnboundedSender<String>,
    exits_rx: mpsc::UnboundedReceiver<String>,
    /// `terminal/wait_for_exit` requests not answered yet.
    waiting: Vec<(String, RequestId)>,
}

impl Default for Terminals {
    fn default() -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Terminals {
            seq: 0,
            live: HashMap::new(),
            dying: Vec::new(),
            exits_tx,
            exits_rx,
            waiting: Vec::new(),
        }
    }
}

impl Terminals {
    /// Starts `spawn` (the command, its cwd and environment) as a new
    /// terminal keeping at most `limit` bytes of output; returns its id.
    pub(crate) async fn create(
        &mut self,
        spawn: SpawnOptions,
        limit: Option<u64>,
    ) -> Result<String, String> {
        if self.live.len() >= MAX_TERMINALS {
            return Err(format!(
                "this session has {MAX_TERMINALS} terminals; release one first"
            ));
        }
        let spawn = spawn.stdio(StdioMode::Null, StdioMode::Piped, StdioMode::Piped);
        let mut child = Contained::spawn(spawn)
            .await
            .map_err(|e| format!("cannot start the command: {e}"))?;
        self.seq += 1;
        let id = format!("term-{}", self.seq);
        let limit = limit.map_or(DEFAULT_OUTPUT_BYTES, |l| {
            usize::try_from(l)
                .unwrap_or(MAX_OUTPUT_BYTES)
                .min(MAX_OUTPUT_BYTES)
        });
        let output = Arc::new(Mutex::new(Output {
            limit,
            ..Output::default()
        }));
        let mut readers = Vec::new();
        let streams: [Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>; 2] = [
            child.take_stdout().map(|s| Box::new(s) as _),
            child.take_stderr().map(|s| Box::new(s) as _),
        ];
        for mut stream in streams.into_iter().flatten() {
            let out = output.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    out.lock().push(&buf[..n]);
                }
            }));
        }
        let exit = Arc::new(Mutex::new(None));
        let (kill_tx, kill_rx) = oneshot::channel();
        let task = tokio::spawn(watch(
            child,
            kill_rx,
            readers,
            exit.clone(),
            id.clone(),
            self.exits_tx.clone(),
        ));
        self.live.insert(
            id.clone(),
            Terminal {
                output,
                exit,
                kill: Some(kill_tx),
                task,
            },
        );
        Ok(id)
    }

    /// The output so far, whether older output was dropped, and the exit
    /// status once the command has ended; `None` for an unknown terminal.
    pub(crate) fn output(&self, id: &str) -> Option<(String, bool, Option<ExitStatus>)> {
        let t = self.live.get(id)?;
        let out = t.output.lock();
        let text = String::from_utf8_lossy(&out.buf).into_owned();
        Some((text, out.truncated, t.exit.lock().clone()))
    }

    /// `terminal/wait_for_exit` as request `rid`: the exit status now if
    /// the command has ended (then answer it), else `None` (it is answered
    /// from [`exited`](Self::exited)). `Err` for an unknown terminal.
    pub(crate) fn wait(&mut self, id: &str, rid: RequestId) -> Result<Option<ExitStatus>, ()> {
        let t = self.live.get(id).ok_or(())?;
        if let Some(e) = t.exit.lock().clone() {
            return Ok(Some(e));
        }
        self.waiting.push((id.to_owned(), rid));
        Ok(None)
    }

    /// The agent gave up waiting (`$/cancel_request`).
    pub(crate) fn forget_wait(&mut self, rid: &RequestId) {
        self.waiting.retain(|(_, r)| r != rid);
    }

    /// Kills a terminal's command (the terminal stays); `false` for an
    /// unknown terminal.
    pub(crate) fn kill(&mut self, id: &str) -> bool {
        match self.live.get_mut(id) {
            Some(t) => {
                if let Some(k) = t.kill.take() {
                    let _ = k.send(());
                }
                true
            }
            None => false,
        }
    }

    /// Kills a terminal's command if it runs and forgets the terminal;
    /// returns the waits that can no longer be answered with its status,
    /// or `None` for an unknown terminal.
    pub(crate) fn release(&mut self, id: &str) -> Option<Vec<RequestId>> {
        let mut t = self.live.remove(id)?;
        if let Some(k) = t.kill.take() {
            let _ = k.send(());
        }
        self.dying.push(t.task);
        self.dying.retain(|h| !h.is_finished());
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(t, _)| t == id);
        self.waiting = kept;
        Some(gone.into_iter().map(|(_, r)| r).collect())
    }

    /// Kills every running command (a cancelled turn: the agent's waits
    /// for them end).
    pub(crate) fn kill_all(&mut self) {
        for t in self.live.values_mut() {
            if let Some(k) = t.kill.take() {
                let _ = k.send(());
            }
        }
    }

    /// The next terminal whose command ended, with the waits to answer
    /// and its status. Pending forever while none ends.
    pub(crate) async fn exited(&mut self) -> (Vec<RequestId>, ExitStatus) {
        loop {
            let Some(id) = self.exits_rx.recv().await else {
                return std::future::pending().await;
            };
            let Some(status) = self.live.get(&id).and_then(|t| t.exit.lock().clone()) else {
                continue;
            };
            let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|(t, _)| *t == id);
            self.waiting = kept;
            if !done.is_empty() {
                return (done.into_iter().map(|(_, r)| r).collect(), status);
            }
        }
    }

    /// Stops every terminal (the session's process ended or the session
    /// stops) and returns once each tree is confirmed gone.
    pub(crate) async fn shutdown(&mut self) {
        self.kill_all();
        self.waiting.clear();
        let mut tasks: Vec<JoinHandle<()>> = self.live.drain().map(|(_, t)| t.task).collect();
        tasks.append(&mut self.dying);
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Waits for a terminal's command to end or to be killed, then confirms
/// its tree is gone (the ladder stops what it left behind), collects the
/// last output and records the status.
async fn watch(
    mut child: Contained,
    kill: oneshot::Receiver<()>,
    readers: Vec<JoinHandle<()>>,
    exit: Arc<Mutex<Option<ExitStatus>>>,
    id: String,
    exits: mpsc::UnboundedSender<String>,
) {
    // A dropped sender (the terminal is gone) kills as well.
    let status = tokio::select! {
        s = child.wait() => s.ok(),
        _ = kill => None,
    };
    let report = child.kill().await.ok();
    let status = status.or_else(|| report.and_then(|r| r.exit_status));
    // The tree is gone, so the pipes are at EOF: take the last output.
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
    }
    *exit.lock() = Some(exit_status(status));
    let _ = exits.send(id);
}

/// A process's end in ACP's terms.
fn exit_status(status: Option<std::process::ExitStatus>) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    let Some(s) = status else {
        // Killed before its status was seen.
        return ExitStatus {
            exit_code: None,
            signal: Some("SIGKILL".into()),
        };
    };
    ExitStatus {
        exit_code: s.code().and_then(|c| u32::try_from(c).ok()),
        signal: s.signal().map(signal_name),
    }
}

fn signal_name(n: i32) -> String {
    let name = match n {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("SIG{n}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_the_newest_bytes_from_a_character_boundary() {
        let mut o = Output {
            limit: 4,
            ..Output::default()
        };
        o.push(b"ab");
        assert!(!o.truncated);
        o.push("cdé".as_bytes()); // é is two bytes: "abcd\xc3\xa9"
        assert!(o.truncated);
        assert_eq!(std::str::from_utf8(&o.buf).unwrap(), "cdé");
        o.push("€".as_bytes()); // three bytes: keep at most 4, whole characters
        assert_eq!(std::str::from_utf8(&o.buf).unwrap(), "€");
    }

    #[test]
    fn statuses_name_their_signal() {
        use std::os::unix::process::ExitStatusExt;
        let ok = exit_status(Some(std::process::ExitStatus::from_raw(3 << 8)));
        assert_eq!((ok.exit_code, ok.signal), (Some(3), None));
        let killed = exit_status(Some(std::process::ExitStatus::from_raw(9)));
        assert_eq!(killed.signal.as_deref(), Some("SIGKILL"));
        assert_eq!(exit_status(None).signal.as_deref(), Some("SIGKILL"));
    }
}
