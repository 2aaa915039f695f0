//! `rampartctl policy lint`: checks policy files the way rampartd loads them, and prints each
//! problem as `file:line:column: error: message`, so editors and CI can jump to it.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{LoadFailure, diagnostic_json, load, render, render_diagnostic};
use crate::output::{Format, print_json};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Policy files or directories (`*.yaml`, `*.yml`, not recursive), checked as one set.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: Format,
}

/// Exit code 0 if every file is valid (warnings included), 1 otherwise.
pub fn run(args: &LintArgs) -> anyhow::Result<i32> {
    match load(&args.paths) {
        Ok((policies, _)) => {
            let names: Vec<&str> = policies.iter().map(|p| p.name()).collect();
            let warnings: Vec<_> = policies.iter().flat_map(|p| p.warnings()).collect();
            if args.format == Format::Table {
                for w in &warnings {
                    println!("{}", render(w, "warning"));
                }
            }
            match args.format {
                Format::Json => print_json(&json!({
                    "valid": true,
                    "policies": policies.iter().map(|p| json!({"name": p.name(), "location": p.location()})).collect::<Vec<_>>(),
                    "errors": [],
                    "warnings": warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
                }))?,
                Format::Table if names.is_empty() => {
                    eprintln!("warning: no policy files (*.yaml, *.yml) in the given paths");
                }
                Format::Table => println!(
                    "ok: {} {} ({})",
                    names.len(),
                    if names.len() == 1 {
                        "policy"
                    } else {
                        "policies"
                    },
                    names.join(", ")
                ),
            }
            Ok(0)
        }
        Err(failure) => {
            match (args.format, &failure) {
                (Format::Json, LoadFailure::Invalid(d)) => print_json(&json!({
                    "valid": false,
                    "policies": [],
                    "errors": d.iter().map(diagnostic_json).collect::<Vec<_>>(),
                    "warnings": [],
                }))?,
                (Format::Json, LoadFailure::Io(e)) => print_json(&json!({
                    "valid": false,
                    "policies": [],
                    "errors": e.iter().map(|(p, m)| json!({"file": p, "line": 0, "column": 0, "message": m, "hint": null})).collect::<Vec<_>>(),
                    "warnings": [],
                }))?,
                (Format::Table, LoadFailure::Invalid(d)) => {
                    // Diagnostics go to stdout: they are the command's output, as with a compiler.
                    for x in d {
                        println!("{}", render_diagnostic(x));
                    }
                    let files: std::collections::BTreeSet<&str> =
                        d.iter().map(|x| x.file.as_str()).collect();
                    eprintln!(
                        "{} {} in {} {}",
                        d.len(),
                        if d.len() == 1 { "error" } else { "errors" },
                        files.len(),
                        if files.len() == 1 { "file" } else { "files" }
                    );
                }
                (Format::Table, LoadFailure::Io(_)) => println!("{}", failure.report()),
            }
            Ok(1)
        }
    }
}
