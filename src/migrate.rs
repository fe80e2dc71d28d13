//! Numbered schema migrations for the service's SQLite database.
//!
//! The delivery queue and the App's campaign records share one file, so each keeps its own
//! version in a `schema_versions` row (one per component) rather than in SQLite's single
//! `PRAGMA user_version`. A component's migrations are a list: migration N (1-based) takes the
//! schema from version N-1 to N, in one immediate transaction together with the new version,
//! so two processes opening the same file never both apply it and a failure leaves the old
//! version intact. A file whose version is newer than the list is refused, never guessed at.
//!
//! Databases written before versioning existed have no row: they start at version 0 and pass
//! through every migration, so each step must also accept a schema that already has it
//! (`IF NOT EXISTS`, [`Step::AddColumn`]).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What the change is for (shown when it fails).
    pub name: &'static str,
    pub step: Step,
}

/// How a migration changes the schema.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Statements run as written.
    Sql(&'static str),
    /// Adds a column unless the table already has it.
    AddColumn {
        table: &'static str,
        column: &'static str,
        definition: &'static str,
    },
}

/// The versions a component's schema moved between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: u32,
    pub to: u32,
}

/// Why a database could not be brought to the current schema.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the {component} schema is at version {stored}, newer than this sota-bot knows \
         (up to {known}); run the sota-bot release that wrote it, or restore a backup"
    )]
    TooNew {
        component: &'static str,
        stored: i64,
        known: u32,
    },
    #[error("{component} schema migration {version} ({name}) failed: {source}")]
    Step {
        component: &'static str,
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{component} schema version: {source}")]
    Version {
        component: &'static str,
        #[source]
        source: rusqlite::Error,
    },
}

const VERSIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)";

/// The stored schema version of `component` (0: never migrated).
pub fn stored_version(conn: &Connection, component: &'static str) -> Result<i64, MigrationError> {
    let version_error = |source| MigrationError::Version { component, source };
    let has_table = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'")
        .and_then(|mut s| s.exists([]))
        .map_err(version_error)?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT version FROM schema_versions WHERE component = ?1",
        [component],
        |r| r.get(0),
    )
    .optional()
    .map(|v| v.unwrap_or(0))
    .map_err(version_error)
}

/// Brings `component`'s schema up to the last of `migrations`.
pub fn migrate(
    conn: &mut Connection,
    component: &'static str,
    migrations: &[Migration],
) -> Result<Migrated, MigrationError> {
    let version_error = |source| MigrationError::Version { component, source };
    let known = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    // Immediate: the write lock is taken before the version is read, so a second process
    // waits here and then finds the work done.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(version_error)?;
    tx.execute_batch(VERSIONS_TABLE).map_err(version_error)?;
    let stored = stored_version(&tx, component)?;
    let from = match u32::try_from(stored) {
        Ok(v) if v <= known => v,
        _ => {
            return Err(MigrationError::TooNew {
                component,
                stored,
                known,
            })
        }
    };
    for (version, migration) in (1..).zip(migrations).skip(from as usize) {
        apply(&tx, migration.step).map_err(|source| MigrationError::Step {
            component,
            version,
            name: migration.name,
            source,
        })?;
    }
    if from < known {
        tx.execute(
            "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            params![component, known],
        )
        .map_err(version_error)?;
    }
    tx.commit().map_err(version_error)?;
    Ok(Migrated { from, to: known })
}

fn apply(conn: &Connection, step: Step) -> rusqlite::Result<()> {
    match step {
        Step::Sql(sql) => conn.execute_batch(sql),
        Step::AddColumn {
            table,
            column,
            definition,
        } => {
            let present = conn
                .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
                .exists([table, column])?;
            if present {
                return Ok(());
            }
            conn.execute_batch(&format!(
                "ALTER TABLE \"{table}\" ADD COLUMN \"{column}\" {definition}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: [Migration; 2] = [
        Migration {
            name: "notes",
            step: Step::Sql("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY)"),
        },
        Migration {
            name: "note text",
            step: Step::AddColumn {
                table: "notes",
                column: "text",
                definition: "TEXT NOT NULL DEFAULT ''",
            },
        },
    ];

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        conn.prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_fresh_database_runs_every_migration_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            migrate(&mut conn, "notes", &NOTES).unwrap(),
            Migrated { from: 0, to: 2 }
        );
        assert_eq!(columns(&conn, "notes"), ["id", "text"]);
        assert_eq!(stored_version(&conn, "notes").unwrap(), 2);
        assert_eq!(
            migrate(&mut conn, "notes", &NOTES).unwrap(),
            Migrated { from: 2, to: 2 }
        );
    }

    #[test]
    fn a_database_from_before_versioning_passes_through_every_step() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Written by a release that already had the column but no version row.
        conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            .unwrap();
        assert_eq!(
            migrate(&mut conn, "notes", &NOTES).unwrap(),
            Migrated { from: 0, to: 2 }
        );
        assert_eq!(columns(&conn, "notes"), ["id", "text"]);
    }

    #[test]
    fn only_the_missing_steps_run_and_components_are_independent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "notes", &NOTES[..1]).unwrap();
        assert_eq!(columns(&conn, "notes"), ["id"]);
        migrate(&mut conn, "other", &NOTES[..1]).unwrap();
        assert_eq!(
            migrate(&mut conn, "notes", &NOTES).unwrap(),
            Migrated { from: 1, to: 2 }
        );
        assert_eq!(stored_version(&conn, "other").unwrap(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "notes", &NOTES).unwrap();
        let err = migrate(&mut conn, "notes", &NOTES[..1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the notes schema is at version 2, newer than this sota-bot knows (up to 1); \
             run the sota-bot release that wrote it, or restore a backup"
        );
        conn.execute("UPDATE schema_versions SET version = -3", [])
            .unwrap();
        assert!(matches!(
            migrate(&mut conn, "notes", &NOTES),
            Err(MigrationError::TooNew { stored: -3, .. })
        ));
    }

    #[test]
    fn a_failed_step_rolls_back_with_its_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            NOTES[0],
            Migration {
                name: "broken",
                step: Step::Sql("CREATE TABLE extra (x); SELECT * FROM missing"),
            },
        ];
        let err = migrate(&mut conn, "notes", &broken).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("notes schema migration 2 (broken) failed: "),
            "{err}"
        );
        assert_eq!(stored_version(&conn, "notes").unwrap(), 0);
        assert!(columns(&conn, "notes").is_empty(), "step 1 rolled back too");
        assert!(columns(&conn, "extra").is_empty());
    }
}
