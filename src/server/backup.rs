//! Online backup of the service database (queue and campaigns) with SQLite's `VACUUM INTO`:
//! a consistent copy taken while `serve` keeps writing, which copying the file (with its
//! write-ahead log beside it) is not.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database at {0}")]
    Missing(String),
    #[error("{0} exists; choose a new file for the backup")]
    Exists(String),
    #[error("backing up {from} to {to}: {source}")]
    Sqlite {
        from: String,
        to: String,
        #[source]
        source: rusqlite::Error,
    },
}

/// Writes a consistent copy of `database` to `out` (which must not exist yet). The database
/// is opened read-only, so a backup run by another user (root, from cron) leaves no files
/// behind that `serve`'s user could not write.
pub fn backup(database: &Path, out: &Path) -> Result<(), BackupError> {
    let from = database.display().to_string();
    let to = out.display().to_string();
    if !database.is_file() {
        return Err(BackupError::Missing(from));
    }
    if out.exists() {
        return Err(BackupError::Exists(to));
    }
    let err = |source| BackupError::Sqlite {
        from: from.clone(),
        to: to.clone(),
        source,
    };
    let conn = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(err)?;
    conn.execute("VACUUM INTO ?1", [out.to_string_lossy()])
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::queue::{IngestWriter, JobStore, NewDelivery};

    #[tokio::test]
    async fn a_backup_taken_while_serve_writes_holds_every_committed_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let writer = IngestWriter::start(&db).unwrap();
        for i in 0..20 {
            writer
                .enqueue(NewDelivery {
                    delivery_id: format!("d{i}"),
                    event: "issues".into(),
                    action: None,
                    installation_id: Some(1),
                    payload: bytes::Bytes::from_static(b"{\"a\":1}"),
                })
                .await
                .unwrap();
        }
        let store = JobStore::open(&db).unwrap();
        let job = store.claim().unwrap().unwrap();
        store.dead_letter(job.id, "boom").unwrap();
        // The writer and the worker connection stay open, as in a running serve.
        let out = dir.path().join("backup.sqlite");
        backup(&db, &out).unwrap();
        let copy = JobStore::open(&out).unwrap();
        assert_eq!(copy.rows().unwrap(), store.rows().unwrap());
        assert_eq!(copy.claim().unwrap().unwrap().payload, b"{\"a\":1}");
        assert!(matches!(backup(&db, &out), Err(BackupError::Exists(_))));
        assert!(matches!(
            backup(&dir.path().join("none"), &dir.path().join("x")),
            Err(BackupError::Missing(_))
        ));
    }
}
