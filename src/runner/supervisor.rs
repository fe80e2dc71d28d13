//! Every process a campaign run starts (servers, benchmark clients, profilers, agents) dies
//! with the run, however the run ends.
//!
//! Each child runs in its own process group, and every group is registered here while it
//! lives. Three mechanisms stop them:
//! - **Signals**: SIGINT and SIGTERM (what GitHub Actions sends on cancel, what systemd
//!   sends on stop) make the run stop every registered group (SIGTERM, then SIGKILL after a
//!   grace period), refuse to start new ones, and let the engine record the interruption
//!   and exit with 128 + the signal number.
//! - **A watchdog process**, forked when the run starts, holding the read end of a pipe
//!   whose write end only the run holds. Registrations travel over the pipe. When the run
//!   dies, even by SIGKILL, the pipe reaches end-of-file and the watchdog stops every group
//!   still registered, then exits.
//! - **A record file** (`sota-processes.json` in the checkout's git directory) of the live
//!   groups with their start times, for the case where the watchdog died too: the next run
//!   on the checkout stops what is left before it uses a GPU, touching only processes whose
//!   start time matches the record, never an unrelated one that reused the id.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a stopped group gets between SIGTERM and SIGKILL. GitHub Actions sends SIGKILL
/// 7.5 s after its first signal; this leaves the run time to record the interruption.
pub const GRACE: Duration = Duration::from_secs(3);

/// File name of the record of live groups, in the checkout's git directory.
pub const RECORD_FILE: &str = "sota-processes.json";

/// One live process group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedGroup {
    pub pgid: u32,
    /// The leader's start time (clock ticks after boot, `/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    pub what: String,
}

struct Shared {
    groups: Mutex<BTreeMap<u32, RecordedGroup>>,
    watchdog: Mutex<Option<File>>,
    record: Mutex<Option<PathBuf>>,
    interrupted: AtomicI32,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        groups: Mutex::new(BTreeMap::new()),
        watchdog: Mutex::new(None),
        record: Mutex::new(None),
        interrupted: AtomicI32::new(0),
    })
}

/// Why supervision could not start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot start the process watchdog: {0}")]
    Watchdog(std::io::Error),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The signal that interrupted this run, if any.
pub fn interrupted() -> Option<i32> {
    match shared().interrupted.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The conventional exit code of a run stopped by `signal`.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// A signal's name for messages and the checkpoint.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGKILL => "SIGKILL".into(),
        other => format!("signal {other}"),
    }
}

/// An error for a child that must not start because the run was interrupted.
pub fn refuse_if_interrupted() -> std::io::Result<()> {
    match interrupted() {
        Some(s) => Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            format!(
                "the run was interrupted by {}; no new process is started",
                signal_name(s)
            ),
        )),
        None => Ok(()),
    }
}

/// Start time (clock ticks since boot) of process `pid`, from `/proc`.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Registers a child's process group (its leader's pid) for the life of the run.
pub fn register(pgid: u32, what: &str) {
    let s = shared();
    let entry = RecordedGroup {
        pgid,
        start_ticks: start_ticks(pgid).unwrap_or(0),
        what: what.chars().take(200).collect(),
    };
    if let Ok(mut g) = s.groups.lock() {
        g.insert(pgid, entry);
    }
    tell_watchdog('+', pgid);
    save_record();
}

/// Forgets a group whose leader has exited (and been waited for).
pub fn unregister(pgid: u32) {
    let s = shared();
    let removed = s.groups.lock().map(|mut g| g.remove(&pgid).is_some());
    if removed.unwrap_or(false) {
        tell_watchdog('-', pgid);
        save_record();
    }
}

fn tell_watchdog(op: char, pgid: u32) {
    if let Ok(mut w) = shared().watchdog.lock() {
        if let Some(pipe) = w.as_mut() {
            let _ = pipe.write_all(format!("{op}{pgid}\n").as_bytes());
        }
    }
}

fn save_record() {
    let s = shared();
    let Some(path) = s.record.lock().ok().and_then(|r| r.clone()) else {
        return;
    };
    let groups: Vec<RecordedGroup> = s
        .groups
        .lock()
        .map(|g| g.values().cloned().collect())
        .unwrap_or_default();
    if groups.is_empty() {
        let _ = std::fs::remove_file(&path);
        return;
    }
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, serde_json::to_vec_pretty(&groups).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-(pgid as libc::pid_t), 0) == 0 }
}

fn signal_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: a negative pid signals the process group we created for the child.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Stops groups: SIGTERM, up to `grace` for them to exit, then SIGKILL.
pub fn stop_groups(pgids: &[u32], grace: Duration) {
    for p in pgids {
        signal_group(*p, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pgids.iter().any(|p| group_alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in pgids.iter().filter(|p| group_alive(**p)) {
        signal_group(*p, libc::SIGKILL);
    }
}

/// Stops every group this run registered.
pub fn stop_all(grace: Duration) {
    let pgids: Vec<u32> = shared()
        .groups
        .lock()
        .map(|g| g.keys().copied().collect())
        .unwrap_or_default();
    stop_groups(&pgids, grace);
}

/// Stops what a previous run on the checkout left running (its record survived it), and
/// returns a line per group stopped. Only groups whose leader still has the recorded start
/// time are touched.
pub fn stop_leftovers(git_dir: &Path) -> Vec<String> {
    let path = git_dir.join(RECORD_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let recorded: Vec<RecordedGroup> = serde_json::from_str(&text).unwrap_or_default();
    let live: Vec<&RecordedGroup> = recorded
        .iter()
        .filter(|g| g.start_ticks != 0 && start_ticks(g.pgid) == Some(g.start_ticks))
        .collect();
    stop_groups(&live.iter().map(|g| g.pgid).collect::<Vec<_>>(), GRACE);
    let _ = std::fs::remove_file(&path);
    live.iter()
        .map(|g| format!("process group {} ({})", g.pgid, g.what))
        .collect()
}

/// Supervision for one campaign run; dropping it ends the watchdog (after a clean run no
/// group is left to stop).
pub struct Supervision {
    _private: (),
}

impl Drop for Supervision {
    fn drop(&mut self) {
        let s = shared();
        if let Ok(mut w) = s.watchdog.lock() {
            w.take();
        }
        if let Ok(mut r) = s.record.lock() {
            r.take();
        }
    }
}

/// Starts supervision for a run on the checkout whose git directory is `git_dir`: the
/// watchdog, the record file and the SIGINT/SIGTERM handlers.
pub fn install(git_dir: &Path) -> Result<Supervision, SupervisorError> {
    let s = shared();
    if let Ok(mut r) = s.record.lock() {
        *r = Some(git_dir.join(RECORD_FILE));
    }
    let pipe = fork_watchdog().map_err(SupervisorError::Watchdog)?;
    if let Ok(mut w) = s.watchdog.lock() {
        *w = Some(pipe);
    }
    let mut signals = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM])
        .map_err(SupervisorError::Signals)?;
    std::thread::Builder::new()
        .name("sota-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let first = shared()
                    .interrupted
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                eprintln!(
                    "[sota] {} received: stopping every process this run started",
                    signal_name(sig)
                );
                stop_all(if first { GRACE } else { Duration::ZERO });
                if first {
                    // The run records the interruption and exits as soon as its current
                    // step fails; should it not, it ends here.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(4));
                        eprintln!("[sota] exiting after {}", signal_name(sig));
                        std::process::exit(exit_code(sig));
                    });
                }
            }
        })
        .map_err(SupervisorError::Signals)?;
    Ok(Supervision { _private: () })
}

/// Forks the watchdog; returns the write end of its pipe.
fn fork_watchdog() -> std::io::Result<File> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors; O_CLOEXEC keeps them out of every child we exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: after fork the child only calls async-signal-safe functions (close, signal,
    // read, kill, nanosleep, _exit) and touches no allocator or lock.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => unsafe {
            libc::close(write_fd);
            watchdog(read_fd)
        },
        _ => {
            // SAFETY: the parent owns the write end from here on.
            unsafe { libc::close(read_fd) };
            Ok(unsafe { File::from_raw_fd(write_fd) })
        }
    }
}

const MAX_GROUPS: usize = 4096;

/// The watchdog's whole life: track `+pgid` / `-pgid` lines until end-of-file (the run is
/// gone), then stop every group still tracked. Async-signal-safe only: no allocation.
unsafe fn watchdog(fd: libc::c_int) -> ! {
    // A terminal's Ctrl-C and a service manager's SIGTERM go to the run: the watchdog
    // outlives it to clean up.
    libc::signal(libc::SIGINT, libc::SIG_IGN);
    libc::signal(libc::SIGTERM, libc::SIG_IGN);
    libc::signal(libc::SIGHUP, libc::SIG_IGN);
    let mut groups = [0 as libc::pid_t; MAX_GROUPS];
    let mut count = 0usize;
    let mut buf = [0u8; 4096];
    let (mut op, mut num, mut in_line) = (0u8, 0 as libc::pid_t, false);
    loop {
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
            break;
        }
        if n < 0 {
            continue;
        }
        for &b in &buf[..n as usize] {
            match b {
                b'+' | b'-' => (op, num, in_line) = (b, 0, true),
                b'0'..=b'9' if in_line => {
                    num = num
                        .saturating_mul(10)
                        .saturating_add((b - b'0') as libc::pid_t)
                }
                b'\n' if in_line => {
                    if op == b'+' && count < MAX_GROUPS && num > 0 {
                        groups[count] = num;
                        count += 1;
                    } else if op == b'-' {
                        if let Some(i) = groups[..count].iter().position(|g| *g == num) {
                            groups[i] = groups[count - 1];
                            count -= 1;
                        }
                    }
                    in_line = false;
                }
                _ => in_line = false,
            }
        }
    }
    for g in &groups[..count] {
        libc::kill(-*g, libc::SIGTERM);
    }
    // Up to the grace period for the groups to exit, then SIGKILL.
    let step = libc::timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    for _ in 0..(GRACE.as_millis() / 50) {
        if groups[..count].iter().all(|g| libc::kill(-*g, 0) != 0) {
            break;
        }
        libc::nanosleep(&step, std::ptr::null_mut());
    }
    for g in &groups[..count] {
        libc::kill(-*g, libc::SIGKILL);
    }
    libc::_exit(0)
}

/// Runs a short command (help capture and the like) as a supervised process group and
/// collects its output.
pub fn output(
    cmd: &mut std::process::Command,
    what: &str,
) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    refuse_if_interrupted()?;
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn()?;
    let pid = child.id();
    register(pid, what);
    let out = child.wait_with_output();
    unregister(pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_come_from_proc() {
        let me = std::process::id();
        assert!(start_ticks(me).is_some_and(|t| t > 0));
        assert_eq!(start_ticks(u32::MAX - 1), None);
    }

    #[test]
    fn leftovers_are_stopped_only_when_their_start_time_matches() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let mut a = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let record = vec![
            RecordedGroup {
                pgid: a.id(),
                start_ticks: start_ticks(a.id()).unwrap(),
                what: "left behind".into(),
            },
            // Same id, another start time: an unrelated process that reused the id.
            RecordedGroup {
                pgid: b.id(),
                start_ticks: start_ticks(b.id()).unwrap() + 1,
                what: "reused id".into(),
            },
        ];
        std::fs::write(
            dir.path().join(RECORD_FILE),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        let stopped = stop_leftovers(dir.path());
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert!(stopped[0].contains("left behind"));
        assert!(a.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(matches!(b.try_wait(), Ok(None)), "the other process lives");
        let _ = b.kill();
        let _ = b.wait();
        assert!(!dir.path().join(RECORD_FILE).exists());
    }
}
