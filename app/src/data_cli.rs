//! `ahlt data import|export`: upstream-format files in and out, for one-off Jobs and people.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use sqlx::PgPool;

use crate::cli::DataCommand;
use crate::domain::audit::Actor;
use crate::domain::data::{self, Document, ImportOptions, ImportReport};

pub async fn run(pool: &PgPool, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Import {
            files,
            mode,
            unknown,
            dry_run,
            json,
        } => {
            let mut documents = Vec::with_capacity(files.len());
            for path in &files {
                let text = if path.as_os_str() == "-" {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("reading stdin")?;
                    text
                } else {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                };
                documents.push(
                    Document::parse(&text)
                        .map_err(anyhow::Error::msg)
                        .with_context(|| format!("{}", path.display()))?,
                );
            }
            let options = ImportOptions {
                mode,
                unknown,
                dry_run,
            };
            let report = data::import(pool, &Actor::system(), &documents, options).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", describe(&report));
            }
            if !report.errors.is_empty() {
                bail!(
                    "import refused: {} error(s); nothing was changed",
                    report.errors.len()
                );
            }
            Ok(())
        }
        DataCommand::Export { output } => {
            let document = data::export(pool).await?;
            let text = serde_json::to_string_pretty(&document)? + "\n";
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => std::io::stdout()
                    .write_all(text.as_bytes())
                    .context("writing stdout")?,
            }
            Ok(())
        }
    }
}

/// The report for people: counts, then every change and error.
pub fn describe(report: &ImportReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let verb = if report.committed {
        "imported"
    } else if report.dry_run && report.errors.is_empty() {
        "dry run, nothing written; would import"
    } else {
        "nothing written; would have imported"
    };
    let e = &report.entities;
    let r = &report.relations;
    let _ = writeln!(
        out,
        "ahlt data import ({verb}): entities {} created, {} updated, {} unchanged, {} skipped; \
         relations {} created, {} updated, {} unchanged, {} skipped",
        e.created, e.updated, e.unchanged, e.skipped, r.created, r.updated, r.unchanged, r.skipped
    );
    for (entity_type, count) in &report.unknown_entity_types {
        let _ = writeln!(
            out,
            "unknown entity type {entity_type}: {count} ({:?})",
            report.unknown
        );
    }
    for name in &report.unknown_relation_types {
        let _ = writeln!(
            out,
            "undeclared relation type {name} ({:?})",
            report.unknown
        );
    }
    if report.secrets_dropped > 0 {
        let _ = writeln!(
            out,
            "left out {} credential-like propert(ies)",
            report.secrets_dropped
        );
    }
    if !report.users_without_password.is_empty() {
        let _ = writeln!(
            out,
            "users without a password (set one before they log in): {}",
            report.users_without_password.join(", ")
        );
    }
    for gate in &report.workflow_gates {
        let _ = writeln!(out, "workflow gate {gate}");
    }
    for line in &report.not_mapped {
        let _ = writeln!(out, "not mapped: {line}");
    }
    for change in &report.changes {
        let _ = writeln!(out, "  {change}");
    }
    for error in &report.errors {
        let _ = writeln!(out, "error: {error}");
    }
    out
}
