//! `rampartctl policy test`: a file of cases (workload, operation, expected outcome) decided
//! against policy files, for CI: exit 1 on any mismatch.
//!
//! ```yaml
//! cases:
//!   - name: cat cannot read passwd
//!     workload: {namespace: default, pod: web, container: nginx, labels: {app: web}}
//!     operation: {read: /etc/passwd, process: /bin/cat}
//!     expect: {verdict: Blocked, policy: DisallowEtcAccessForNginx, rule: "files[0]"}
//! ```

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use super::explain::{Outcome, decide, outcome_json};
use super::probe::{OperationArgs, WorkloadArgs, parse_verdict, verdict_word};
use crate::output::{Colour, Format, Painter, print_json};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A policy file or directory; repeat for more.
    #[arg(long, required = true, value_name = "DIR|FILE")]
    pub policies: Vec<PathBuf>,
    /// Case files (YAML).
    #[arg(required = true, value_name = "CASES.yaml")]
    pub cases: Vec<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    name: Option<String>,
    workload: WorkloadArgs,
    operation: OperationArgs,
    expect: Expect,
}

/// Fields left out are not checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    verdict: String,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default, alias = "ruleId")]
    rule: Option<String>,
}

struct Result_ {
    file: String,
    name: String,
    outcome: Option<Outcome>,
    failures: Vec<String>,
}

pub fn run(args: &TestArgs) -> anyhow::Result<i32> {
    let (_, snapshot) = super::load(&args.policies)
        .map_err(|f| anyhow!("policies are invalid:\n{}", f.report()))?;
    let mut results = Vec::new();
    for path in &args.cases {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read case file {}", path.display()))?;
        let file: CaseFile = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow!("{}: {}", path.display(), first_line(&e.to_string())))?;
        for (i, case) in file.cases.iter().enumerate() {
            let name = case
                .name
                .clone()
                .unwrap_or_else(|| format!("case {}", i + 1));
            results.push(run_case(path.display().to_string(), name, case, &snapshot));
        }
    }
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let passed = results.len() - failed;
    match args.format {
        Format::Json => print_json(&json!({
            "passed": passed,
            "failed": failed,
            "cases": results.iter().map(|r| json!({
                "file": r.file,
                "name": r.name,
                "ok": r.failures.is_empty(),
                "failures": r.failures,
                "got": r.outcome.as_ref().map(outcome_json),
            })).collect::<Vec<_>>(),
        }))?,
        Format::Table => {
            let paint = Painter::new();
            for r in &results {
                if r.failures.is_empty() {
                    println!("{} {}", paint.paint(Colour::Green, "ok  "), r.name);
                } else {
                    println!(
                        "{} {} ({})",
                        paint.paint(Colour::Red, "FAIL"),
                        r.name,
                        r.file
                    );
                    for f in &r.failures {
                        println!("       {f}");
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn run_case(
    file: String,
    name: String,
    case: &Case,
    snapshot: &rampart_policy::Snapshot,
) -> Result_ {
    let mut failures = Vec::new();
    let Some(want) = parse_verdict(&case.expect.verdict) else {
        failures.push(format!(
            "expect.verdict `{}` is not Blocked, Alerted or Allowed",
            case.expect.verdict
        ));
        return Result_ {
            file,
            name,
            outcome: None,
            failures,
        };
    };
    let probe = match case.operation.probe() {
        Ok(p) => p,
        Err(e) => {
            failures.push(format!("operation: {e}"));
            return Result_ {
                file,
                name,
                outcome: None,
                failures,
            };
        }
    };
    let got = decide(snapshot, &case.workload.workload(), &probe);
    if got.verdict != want {
        failures.push(format!(
            "verdict: expected {}, got {}{}",
            verdict_word(want),
            verdict_word(got.verdict),
            got.policy
                .as_ref()
                .map(|p| format!(" by {p} rule {}", got.rule.as_deref().unwrap_or("?")))
                .unwrap_or_default()
        ));
    }
    let check = |what: &str, want: &Option<String>, got: &Option<String>, f: &mut Vec<String>| {
        if let Some(w) = want
            && got.as_deref() != Some(w.as_str())
        {
            f.push(format!(
                "{what}: expected {w}, got {}",
                got.as_deref().unwrap_or("none")
            ));
        }
    };
    check("policy", &case.expect.policy, &got.policy, &mut failures);
    check("rule", &case.expect.rule, &got.rule, &mut failures);
    Result_ {
        file,
        name,
        outcome: Some(got),
        failures,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}
