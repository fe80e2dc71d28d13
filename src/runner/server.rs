//! Serving-engine processes: launch, wait for readiness, stop and free the port.
//!
//! The API is synchronous (threads, std sockets) so it can be called from anywhere: async
//! callers wrap it in `spawn_blocking`. Readiness is a plain HTTP/1.1 GET over a std socket
//! rather than reqwest's blocking client, which must not run inside a tokio runtime.

use super::classify::{classify_failure, ExitKind};
use super::process::{
    CommandSpec, LogCapture, OsLauncher, ProcessLauncher, ProcessSpec, RunningProcess,
};
use crate::bench::row::RunStatus;
use crate::secrets::SecretSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to launch one server.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub command: CommandSpec,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub host: String,
    pub port: u16,
    pub log_path: PathBuf,
    pub ready_timeout: Duration,
    /// Paths polled for readiness; the first to answer 200 makes the server ready.
    pub health_paths: Vec<String>,
    /// Time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    pub secrets: SecretSet,
}

impl LaunchSpec {
    /// A spec with the usual defaults: 127.0.0.1, `/health` then `/v1/models`, 10 minutes
    /// to become ready, 15 s grace on stop, secrets from the default environment variables.
    pub fn new(command: CommandSpec, port: u16, log_path: impl Into<PathBuf>) -> LaunchSpec {
        LaunchSpec {
            command,
            env: Vec::new(),
            cwd: None,
            host: "127.0.0.1".into(),
            port,
            log_path: log_path.into(),
            ready_timeout: Duration::from_secs(600),
            health_paths: vec!["/health".into(), "/v1/models".into()],
            stop_grace: Duration::from_secs(15),
            secrets: SecretSet::from_default_env(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

/// Why a server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("cannot open log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("server exited before it was ready ({status}): {reason}")]
    ExitedBeforeReady { status: RunStatus, reason: String },
    #[error("server not ready after {waited_s:.1}s (no 200 from {paths})")]
    ReadyTimeout { waited_s: f64, paths: String },
    #[error("process error: {0}")]
    Io(#[from] std::io::Error),
}

impl RunnerError {
    /// The row status and reason this error stands for.
    pub fn classification(&self) -> (RunStatus, String) {
        match self {
            RunnerError::ExitedBeforeReady { status, reason } => (*status, reason.clone()),
            RunnerError::ReadyTimeout { .. } => (RunStatus::Timeout, self.to_string()),
            other => (RunStatus::Failed, other.to_string()),
        }
    }
}

/// What `stop` observed.
#[derive(Debug, Clone, PartialEq)]
pub struct StopReport {
    pub exit_code: Option<i32>,
    /// SIGKILL was needed after the grace period.
    pub killed: bool,
    pub port_freed: bool,
}

/// A running, ready server.
pub struct ServerProcess {
    child: Box<dyn RunningProcess>,
    spec: LaunchSpec,
    capture: LogCapture,
    /// Time from spawn to the first 200.
    pub ready_after: Duration,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("pid", &self.child.id())
            .field("url", &self.spec.base_url())
            .finish()
    }
}

impl ServerProcess {
    /// Launches with real OS processes.
    pub fn launch(spec: LaunchSpec) -> Result<ServerProcess, RunnerError> {
        ServerProcess::launch_with(&OsLauncher, spec)
    }

    /// Launches through `launcher` and waits until a health path answers 200. Fails fast when
    /// the process exits first (classified from its log, e.g. OOM).
    pub fn launch_with(
        launcher: &dyn ProcessLauncher,
        spec: LaunchSpec,
    ) -> Result<ServerProcess, RunnerError> {
        let capture =
            LogCapture::to_file(&spec.log_path, spec.secrets.clone()).map_err(|source| {
                RunnerError::Log {
                    path: spec.log_path.clone(),
                    source,
                }
            })?;
        let pspec = ProcessSpec {
            command: spec.command.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
        };
        let mut child =
            launcher
                .spawn(&pspec, capture.clone())
                .map_err(|source| RunnerError::Spawn {
                    command: spec.secrets.scrub(&spec.command.display()).into_owned(),
                    source,
                })?;
        tracing::info!(pid = child.id(), url = %spec.base_url(), "server launched");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                child.drain_output();
                let exit = exit_kind(status);
                let c = classify_failure(&capture.tail(), &exit);
                return Err(RunnerError::ExitedBeforeReady {
                    status: if c.status == RunStatus::Ok {
                        RunStatus::Failed
                    } else {
                        c.status
                    },
                    reason: c
                        .reason
                        .unwrap_or_else(|| "exited with code 0 before it was ready".into()),
                });
            }
            let timeout = Duration::from_secs(2);
            if spec
                .health_paths
                .iter()
                .any(|p| http_get_status(&spec.host, spec.port, p, timeout) == Some(200))
            {
                let ready_after = started.elapsed();
                tracing::info!(ready_after_s = ready_after.as_secs_f64(), "server ready");
                return Ok(ServerProcess {
                    child,
                    spec,
                    capture,
                    ready_after,
                });
            }
            if started.elapsed() >= spec.ready_timeout {
                let waited_s = started.elapsed().as_secs_f64();
                let paths = spec.health_paths.join(", ");
                let mut server = ServerProcess {
                    child,
                    spec,
                    capture,
                    ready_after: Duration::ZERO,
                };
                let _ = server.stop_inner();
                return Err(RunnerError::ReadyTimeout { waited_s, paths });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn base_url(&self) -> String {
        self.spec.base_url()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn spec(&self) -> &LaunchSpec {
        &self.spec
    }

    /// The last (scrubbed) log lines.
    pub fn log_tail(&self) -> String {
        self.capture.tail()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, SIGKILL after the grace period, then waits (up to 10 s) for the port.
    pub fn stop(mut self) -> Result<StopReport, RunnerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<StopReport, RunnerError> {
        let mut killed = false;
        let status = match self.child.try_wait()? {
            Some(s) => s,
            None => {
                self.child.terminate()?;
                let deadline = Instant::now() + self.spec.stop_grace;
                loop {
                    if let Some(s) = self.child.try_wait()? {
                        break s;
                    }
                    if Instant::now() >= deadline {
                        killed = true;
                        self.child.kill()?;
                        break self.child.wait()?;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        // The leader is gone; make sure nothing else of its group holds the port.
        let _ = self.child.kill();
        self.child.drain_output();
        let port_freed = wait_port_free(&self.spec.host, self.spec.port, Duration::from_secs(10));
        Ok(StopReport {
            exit_code: status.code(),
            killed,
            port_freed,
        })
    }
}

/// Maps an exit status to [`ExitKind`].
pub fn exit_kind(status: std::process::ExitStatus) -> ExitKind {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => ExitKind::Success,
        (Some(c), _) => ExitKind::Code(c),
        (None, Some(s)) => ExitKind::Signal(s),
        (None, None) => ExitKind::Code(-1),
    }
}

/// Status code of `GET path`, or `None` when nothing answered in time.
pub fn http_get_status(host: &str, port: u16, path: &str, timeout: Duration) -> Option<u16> {
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match stream.read(head.get_mut(n..)?) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let line = std::str::from_utf8(head.get(..n)?).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until `host:port` can be bound again.
pub fn wait_port_free(host: &str, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpListener::bind((host, port)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that was free a moment ago (for tests and local runs).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
