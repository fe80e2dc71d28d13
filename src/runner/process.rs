//! Process spawning behind a small trait, with scrubbed log capture.
//!
//! Every child runs in its own process group so that stopping a shell command also stops
//! what it started. Its stdout and stderr are read line by line, passed through
//! [`crate::secrets::SecretSet::scrub`], and only then written to the log file; a tail of
//! the scrubbed lines is kept in memory for failure classification.

use crate::secrets::SecretSet;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Lines of scrubbed output kept in memory per process.
const TAIL_LINES: usize = 400;

/// What to run: an argument vector or a shell string (run with `sh -c`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Shell(String),
}

impl CommandSpec {
    /// The command as one shell-quoted line (for rows and reports).
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Shell(s) => s.clone(),
            CommandSpec::Argv(v) => v
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The same command with extra arguments appended.
    pub fn with_args(&self, extra: &[&str]) -> CommandSpec {
        match self {
            CommandSpec::Argv(v) => {
                let mut v = v.clone();
                v.extend(extra.iter().map(|s| s.to_string()));
                CommandSpec::Argv(v)
            }
            CommandSpec::Shell(s) => CommandSpec::Shell(format!("{s} {}", extra.join(" "))),
        }
    }
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// How to run one process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub command: CommandSpec,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// Where a process's scrubbed output goes.
#[derive(Debug, Clone)]
pub struct LogCapture {
    file: Option<Arc<Mutex<File>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    secrets: SecretSet,
}

impl LogCapture {
    /// Captures to `log_path` (created, parent folders too) and to memory.
    pub fn to_file(log_path: &Path, secrets: SecretSet) -> std::io::Result<LogCapture> {
        if let Some(parent) = log_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(log_path)?;
        Ok(LogCapture {
            file: Some(Arc::new(Mutex::new(file))),
            tail: Arc::default(),
            secrets,
        })
    }

    /// Captures to memory only.
    pub fn in_memory(secrets: SecretSet) -> LogCapture {
        LogCapture {
            file: None,
            tail: Arc::default(),
            secrets,
        }
    }

    /// A scrubber for one output stream of the process (a PEM block spans lines, so each
    /// stream keeps its own state).
    pub fn line_scrubber(&self) -> crate::secrets::LineScrubber {
        self.secrets.line_scrubber()
    }

    /// Records one line of output, scrubbed by the stream's `lines` before it is stored
    /// anywhere.
    pub fn push_line(&self, lines: &mut crate::secrets::LineScrubber, line: &str) {
        let clean = lines.line(line).into_owned();
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{clean}");
            }
        }
        if let Ok(mut t) = self.tail.lock() {
            if t.len() >= TAIL_LINES {
                t.pop_front();
            }
            t.push_back(clean);
        }
    }

    /// The last captured lines, joined.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// A started process.
pub trait RunningProcess: Send {
    fn id(&self) -> u32;
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>>;
    /// Asks the whole process group to stop (SIGTERM).
    fn terminate(&mut self) -> std::io::Result<()>;
    /// Kills the whole process group (SIGKILL).
    fn kill(&mut self) -> std::io::Result<()>;
    fn wait(&mut self) -> std::io::Result<ExitStatus>;
    /// Waits until all output has been captured (after the process exited).
    fn drain_output(&mut self);
}

/// Starts processes; tests and production both use [`OsLauncher`] with real processes.
pub trait ProcessLauncher: Send + Sync {
    fn spawn(
        &self,
        spec: &ProcessSpec,
        capture: LogCapture,
    ) -> std::io::Result<Box<dyn RunningProcess>>;
}

/// Spawns real OS processes in their own process group.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsLauncher;

struct OsProcess {
    child: Child,
    readers: Vec<JoinHandle<()>>,
}

impl ProcessLauncher for OsLauncher {
    fn spawn(
        &self,
        spec: &ProcessSpec,
        capture: LogCapture,
    ) -> std::io::Result<Box<dyn RunningProcess>> {
        use std::os::unix::process::CommandExt;
        let mut cmd = match &spec.command {
            CommandSpec::Shell(s) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
            CommandSpec::Argv(v) => {
                let Some((program, args)) = v.split_first() else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "empty command",
                    ));
                };
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        // Engines, benchmark clients and profilers need the Hugging Face token (gated
        // weights, tokenizers) and nothing else secret: no push token, no agent or reviewer
        // key, no App secret. A variable the spec sets explicitly still reaches them.
        for name in crate::secrets::withheld_env(crate::secrets::HF_TOKEN_VARS) {
            cmd.env_remove(name);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        super::supervisor::refuse_if_interrupted()?;
        let mut child = cmd.spawn()?;
        super::supervisor::register(child.id(), &spec.command.display());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(pump(out, capture.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(pump(err, capture));
        }
        Ok(Box::new(OsProcess { child, readers }))
    }
}

fn pump(stream: impl std::io::Read + Send + 'static, capture: LogCapture) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut lines = capture.line_scrubber();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    capture.push_line(&mut lines, line.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

fn signal_group(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pgid = pid as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        let err = std::io::Error::last_os_error();
        // ESRCH: the group is already gone, which is what we wanted.
        if err.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(err)
        }
    }
}

impl RunningProcess for OsProcess {
    fn id(&self) -> u32 {
        self.child.id()
    }
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        if status.is_some() {
            super::supervisor::unregister(self.child.id());
        }
        Ok(status)
    }
    fn terminate(&mut self) -> std::io::Result<()> {
        signal_group(self.child.id(), libc::SIGTERM)
    }
    fn kill(&mut self) -> std::io::Result<()> {
        signal_group(self.child.id(), libc::SIGKILL)
    }
    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait()?;
        super::supervisor::unregister(self.child.id());
        Ok(status)
    }
    fn drain_output(&mut self) {
        for h in self.readers.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for OsProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = signal_group(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
        }
        super::supervisor::unregister(self.child.id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> String {
        let capture = LogCapture::in_memory(SecretSet::from_default_env());
        let spec = ProcessSpec {
            command: CommandSpec::Shell(script.to_string()),
            env: Vec::new(),
            cwd: None,
        };
        let mut p = OsLauncher.spawn(&spec, capture.clone()).unwrap();
        p.wait().unwrap();
        p.drain_output();
        capture.tail()
    }

    #[test]
    fn a_private_key_printed_line_by_line_is_removed_whole() {
        let out = run("printf 'loading\\n-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\\n-----END PRIVATE KEY-----\\nready\\n'");
        assert!(
            out.starts_with("loading\n") && out.ends_with("\nready"),
            "{out}"
        );
        assert!(!out.contains("MIIEvQ") && !out.contains("BKcwgg"), "{out}");
    }

    #[test]
    fn engines_inherit_no_secret_but_the_hugging_face_token() {
        std::env::set_var("SOTA_PROCESS_TEST_SECRET", "withheld-from-engines-1");
        crate::secrets::register_env_name("SOTA_PROCESS_TEST_SECRET");
        let out = run("echo \"got ${SOTA_PROCESS_TEST_SECRET:-nothing}, PATH ${PATH:+set}\"");
        assert_eq!(out, "got nothing, PATH set");
    }
}
