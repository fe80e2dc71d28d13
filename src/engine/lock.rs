//! One engine per checkout: a run holds an exclusive lock on the checkout for its whole
//! life, so a second `local run`/`resume` (or runner phase) cannot measure, patch or commit
//! in the same work tree at the same time. The lock lives in the git directory (never in the
//! work tree, which must stay clean) and the kernel releases it when the holder dies, even
//! by SIGKILL.

use super::EngineError;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// File name of the lock, in the checkout's git directory.
pub const LOCK_FILE: &str = "sota-engine.lock";

/// The held lock; released on drop.
#[derive(Debug)]
pub struct CheckoutLock {
    _file: File,
}

/// Who holds a lock: written into the lock file by its holder.
fn holder_line() -> String {
    let pid = std::process::id();
    format!(
        "pid {pid}, started {}",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S %Z")
    )
}

impl CheckoutLock {
    /// Takes the lock of the checkout whose git directory is `git_dir`, or says who holds it.
    pub fn acquire(git_dir: &Path) -> Result<CheckoutLock, EngineError> {
        let path = git_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(super::io_err(&path))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(EngineError::Refused(format!(
                "another sota-bot run is using this checkout ({}); wait for it to end or stop it first",
                holder.trim()
            )));
        }
        file.set_len(0).map_err(super::io_err(&path))?;
        let _ = file.rewind();
        let _ = writeln!(file, "{}", holder_line());
        Ok(CheckoutLock { _file: file })
    }
}

/// Everything a campaign run holds while it runs: the checkout's lock and the supervision of
/// its processes. Taking it first stops what a previous run on the checkout left behind.
pub struct RunGuard {
    _lock: CheckoutLock,
    _supervision: crate::runner::supervisor::Supervision,
}

impl RunGuard {
    /// Locks `checkout`, stops a previous run's leftover processes (reported through
    /// `report`), and starts supervision (watchdog, SIGINT/SIGTERM handling).
    pub fn begin(checkout: &Path, report: &mut dyn FnMut(&str)) -> Result<RunGuard, EngineError> {
        use crate::runner::supervisor;
        let git_dir = git2::Repository::discover(checkout)
            .map(|r| r.path().to_path_buf())
            .map_err(|e| {
                EngineError::Refused(format!("{}: not a git checkout: {e}", checkout.display()))
            })?;
        let lock = CheckoutLock::acquire(&git_dir)?;
        for left in supervisor::stop_leftovers(&git_dir) {
            report(&format!("stopped {left}, left running by an earlier run"));
        }
        let supervision =
            supervisor::install(&git_dir).map_err(|e| EngineError::Refused(e.to_string()))?;
        Ok(RunGuard {
            _lock: lock,
            _supervision: supervision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = CheckoutLock::acquire(dir.path()).unwrap();
        // A lock taken through another open file description, as a second process would.
        let e = CheckoutLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(CheckoutLock::acquire(dir.path()).is_ok());
    }
}
