//! `rampartctl policy explain`: what the policies decide for one operation of one workload, and
//! why.
//!
//! The decision is the policy crate's, over the whole set, exactly as an agent computes it. The
//! "why" is computed with the same crate rather than by re-implementing its matching here (which
//! could drift from it): each policy is re-parsed with a single rule, or a single selector
//! field, and decided alone. The verdict of a one-rule policy says whether that rule matches.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use rampart_policy::model::At;
use rampart_policy::{Decision, Mode, Policy, Snapshot, Verdict, Workload};
use serde_json::{Value, json};

use super::probe::{OperationArgs, Probe, WorkloadArgs, verdict_word};
use crate::output::{Colour, Format, Painter, print_json};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A policy file or directory (as rampartd reads it: `*.yaml`, `*.yml`); repeat for more.
    #[arg(long, required = true, value_name = "DIR|FILE")]
    pub policies: Vec<PathBuf>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub operation: OperationArgs,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: Format,
}

/// The decision over the whole set, in owned form.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub policy: Option<String>,
    pub rule: Option<String>,
    pub message: String,
    pub severity: Option<String>,
    pub response: Option<String>,
}

impl Outcome {
    pub fn of(d: &Decision<'_>, w: &Workload, probe: &Probe) -> Self {
        Outcome {
            verdict: d.verdict,
            policy: d.policy_name().map(str::to_owned),
            rule: d.rule_id().map(str::to_owned),
            // An allow writes no alert, so it has no message to show.
            message: if d.verdict == Verdict::Allow {
                String::new()
            } else {
                d.message(w, &probe.operation())
            },
            severity: d.severity().map(|s| s.as_str().to_owned()),
            response: d.response().map(|r| response_word(r).to_owned()),
        }
    }
}

fn response_word(r: rampart_policy::Response) -> &'static str {
    match r {
        rampart_policy::Response::Block => "block",
        rampart_policy::Response::KillProcess => "kill-process",
        rampart_policy::Response::KillPod => "kill-pod",
    }
}

pub fn decide(snapshot: &Snapshot, w: &Workload, probe: &Probe) -> Outcome {
    let view = snapshot.for_workload(w);
    Outcome::of(&probe.decide(&view), w, probe)
}

/// One rule of an in-scope policy and what it says about the operation alone.
struct RuleReport {
    id: String,
    location: String,
    action: String,
    /// `None`: the rule does not match. `Some(Err)`: it could not be isolated.
    result: Option<Result<Verdict, String>>,
}

enum Scope {
    In,
    Learn,
    /// With the selector fields that do not match (empty if they could not be told apart).
    Out(Vec<String>),
}

struct PolicyReport {
    name: String,
    location: String,
    mode: Mode,
    scope: Scope,
    /// The policy's own decision, alone (an allow cancels its own blocks).
    alone: Option<Outcome>,
    rules: Vec<RuleReport>,
}

pub fn run(args: &ExplainArgs) -> anyhow::Result<i32> {
    let (policies, snapshot) = super::load(&args.policies)
        .map_err(|f| anyhow!("policies are invalid:\n{}", f.report()))?;
    let probe = args.operation.probe()?;
    let w = args.workload.workload();
    let outcome = decide(&snapshot, &w, &probe);
    let mut reports: Vec<PolicyReport> = policies.iter().map(|p| report(p, &w, &probe)).collect();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    match args.format {
        Format::Json => print_json(&to_json(args, &probe, &outcome, &reports))?,
        Format::Table => print!("{}", render(args, &probe, &outcome, &reports)),
    }
    Ok(0)
}

fn report(p: &Policy, w: &Workload, probe: &Probe) -> PolicyReport {
    let mode = p.doc.spec.value.mode;
    let alone_snapshot = Snapshot::new([p.clone()]).ok();
    let view = alone_snapshot.as_ref().map(|s| s.for_workload(w));
    let selected = view.as_ref().is_some_and(|v| !v.is_empty() || v.learning());
    let doc = source_doc(p);
    let scope = if !selected {
        Scope::Out(
            doc.as_ref()
                .map(|d| failing_selectors(p, d, w))
                .unwrap_or_default(),
        )
    } else if mode == Mode::Learn {
        Scope::Learn
    } else {
        Scope::In
    };
    let alone = match (&scope, &view) {
        (Scope::In, Some(v)) => Some(Outcome::of(&probe.decide(v), w, probe)),
        _ => None,
    };
    let rules = if matches!(scope, Scope::In) {
        rules_of(p, doc.as_ref(), w, probe)
    } else {
        Vec::new()
    };
    PolicyReport {
        name: p.name().to_owned(),
        location: p.location(),
        mode,
        scope,
        alone,
        rules,
    }
}

/// The policy's document as generic data, found in its file by name.
fn source_doc(p: &Policy) -> Option<Value> {
    let text = std::fs::read_to_string(&p.file).ok()?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).ok()?;
    docs.into_iter()
        .find(|d| d.pointer("/metadata/name").and_then(Value::as_str) == Some(p.name()))
}

/// Parses `doc` with its spec replaced; JSON is YAML, so the policy crate reads it as written.
fn variant(p: &Policy, doc: &Value, spec: Value) -> Result<Snapshot, String> {
    let mut d = doc.clone();
    d["spec"] = spec;
    let text = serde_json::to_string(&d).map_err(|e| e.to_string())?;
    let parsed = rampart_policy::parse_str(&p.file, &text).map_err(|e| e.to_string())?;
    Snapshot::new(parsed).map_err(|e| e.to_string())
}

fn rules_of(p: &Policy, doc: Option<&Value>, w: &Workload, probe: &Probe) -> Vec<RuleReport> {
    let spec = &p.doc.spec.value;
    let loc = |line: u32, column: u32| format!("{}:{line}:{column}", p.file);
    let id_of =
        |id: &Option<At<String>>, default: String| id.as_ref().map_or(default, |i| i.value.clone());
    // (list key in the spec, index or None for a singleton, id, location, action)
    let mut rules: Vec<(&str, Option<usize>, String, String, String)> = Vec::new();
    let action = |a: rampart_policy::model::RuleAction| format!("{a:?}").to_ascii_lowercase();
    for (i, r) in spec.files.iter().enumerate() {
        let id = id_of(&r.value.id, format!("files[{i}]"));
        rules.push((
            "files",
            Some(i),
            id,
            loc(r.line, r.column),
            action(r.value.action),
        ));
    }
    for (i, r) in spec.processes.iter().enumerate() {
        let id = id_of(&r.value.id, format!("processes[{i}]"));
        let mut a = action(r.value.action);
        if r.value.allow_only.is_some() {
            a = format!("{a} (allowOnly)");
        }
        rules.push(("processes", Some(i), id, loc(r.line, r.column), a));
    }
    for (i, r) in spec.network.iter().enumerate() {
        let id = id_of(&r.value.id, format!("network[{i}]"));
        rules.push((
            "network",
            Some(i),
            id,
            loc(r.line, r.column),
            action(r.value.action),
        ));
    }
    for (i, r) in spec.integrity.iter().enumerate() {
        let id = id_of(&r.value.id, format!("integrity[{i}]"));
        rules.push((
            "integrity",
            Some(i),
            id,
            loc(r.line, r.column),
            action(r.value.action),
        ));
    }
    if let Some(r) = &spec.drift {
        rules.push((
            "drift",
            None,
            "drift".into(),
            loc(r.line, r.column),
            action(r.value.action),
        ));
    }
    if let Some(r) = &spec.hardening {
        let a = action(r.value.action);
        rules.push((
            "hardening",
            None,
            "hardening".into(),
            loc(r.line, r.column),
            a,
        ));
    }
    let rule_kinds = [
        "files",
        "processes",
        "network",
        "integrity",
        "drift",
        "hardening",
    ];
    rules
        .into_iter()
        .map(|(key, index, id, location, action)| {
            let result = doc.map(|doc| {
                let mut spec = doc["spec"].clone();
                let Some(obj) = spec.as_object_mut() else {
                    return Err("spec is not a map".to_owned());
                };
                let mut rule = match index {
                    Some(i) => obj.get(key).and_then(|l| l.get(i)).cloned(),
                    None => obj.get(key).cloned(),
                }
                .ok_or_else(|| format!("rule {id} not found in the file"))?;
                if index.is_some() {
                    // Keep the id the rule has in the full policy, not `files[0]` of the copy.
                    rule["id"] = Value::String(id.clone());
                }
                for k in rule_kinds {
                    obj.remove(k);
                }
                obj.insert(
                    key.to_owned(),
                    if index.is_some() { json!([rule]) } else { rule },
                );
                let s = variant(p, doc, spec)?;
                let view = s.for_workload(w);
                let d = probe.decide(&view);
                Ok(d.policy_name().map(|_| d.verdict))
            });
            let result = match result {
                None => Some(Err("the policy file could not be read again".to_owned())),
                Some(Ok(Some(v))) => Some(Ok(v)),
                Some(Ok(None)) => None,
                Some(Err(e)) => Some(Err(e)),
            };
            RuleReport {
                id,
                location,
                action,
                result,
            }
        })
        .collect()
}

/// The selector fields of `p` that `w` does not satisfy, as written in the policy.
fn failing_selectors(p: &Policy, doc: &Value, w: &Workload) -> Vec<String> {
    let Some(selector) = doc.pointer("/spec/selector").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in selector {
        // Some rule keeps the one-field policy valid ("policy has no rules"); which one does
        // not matter, only whether the policy selects the workload.
        let spec = json!({"selector": {key: value}, "drift": {"action": "alert"}});
        let selects = variant(p, doc, spec)
            .map(|s| !s.for_workload(w).is_empty())
            .unwrap_or(true);
        if !selects {
            out.push(format!("{key}: {}", compact(value)));
        }
    }
    out
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
        Mode::Learn => "learn",
    }
}

fn workload_mismatch(w: &Workload) -> String {
    format!(
        "namespace {:?}, pod {:?}, container {:?}, image {:?}, labels {:?}",
        w.namespace, w.pod_name, w.container_name, w.image, w.pod_labels
    )
}

fn render(args: &ExplainArgs, probe: &Probe, o: &Outcome, reports: &[PolicyReport]) -> String {
    let paint = Painter::new();
    let mut s = String::new();
    let verdict = paint.action(verdict_word(o.verdict));
    match (&o.policy, &o.rule) {
        (Some(p), Some(r)) => {
            s.push_str(&format!(
                "{verdict} by {} rule {}",
                paint.paint(Colour::Bold, p),
                paint.paint(Colour::Bold, r)
            ));
            let mut extra = Vec::new();
            if let Some(sev) = &o.severity {
                extra.push(format!("severity {sev}"));
            }
            if let Some(resp) = &o.response {
                extra.push(format!("response {resp}"));
            }
            if !extra.is_empty() {
                s.push_str(&format!(" ({})", extra.join(", ")));
            }
            s.push('\n');
            // An allow writes no alert; its policy's template would read as if it did.
            if o.verdict != Verdict::Allow && !o.message.is_empty() {
                s.push_str(&format!("  message: {}\n", o.message));
            }
        }
        _ => s.push_str(&format!(
            "{verdict}: no rule matches (the default is allow)\n"
        )),
    }
    s.push_str(&format!("  workload: {}\n", args.workload.describe()));
    s.push_str(&format!("  operation: {}\n", probe.describe()));

    let (in_scope, out): (Vec<_>, Vec<_>) = reports
        .iter()
        .partition(|r| !matches!(r.scope, Scope::Out(_)));
    s.push_str(&format!("\nPolicies in scope ({}):\n", in_scope.len()));
    if in_scope.is_empty() {
        s.push_str("  none: no policy selects this workload\n");
    }
    for r in &in_scope {
        s.push_str(&format!(
            "  {} ({}), {}\n",
            paint.paint(Colour::Bold, &r.name),
            mode_word(r.mode),
            r.location
        ));
        if matches!(r.scope, Scope::Learn) {
            s.push_str("    learn mode: records what the workload does; never blocks or alerts\n");
            continue;
        }
        if let Some(a) = &r.alone {
            let said = match (&a.rule, a.verdict) {
                (None, _) => "no rule matches".to_owned(),
                (Some(rule), Verdict::Allow) => {
                    let cancelled = r
                        .rules
                        .iter()
                        .filter(|x| matches!(x.result, Some(Ok(Verdict::Block | Verdict::Alert))))
                        .map(|x| x.id.as_str())
                        .collect::<Vec<_>>();
                    if cancelled.is_empty() {
                        format!("Allowed by rule {rule}")
                    } else {
                        format!(
                            "Allowed by rule {rule}, which cancels this policy's {}",
                            cancelled.join(", ")
                        )
                    }
                }
                (Some(rule), v) => format!("{} by rule {rule}", verdict_word(v)),
            };
            s.push_str(&format!("    this policy alone: {said}\n"));
        }
        for rule in &r.rules {
            let (word, colour) = match &rule.result {
                None => ("no match".to_owned(), Some(Colour::Dim)),
                Some(Ok(v)) => (
                    format!("matches: {}", verdict_word(*v)),
                    match v {
                        Verdict::Block => Some(Colour::Red),
                        Verdict::Alert => Some(Colour::Yellow),
                        Verdict::Allow => Some(Colour::Green),
                    },
                ),
                Some(Err(e)) => (format!("cannot tell: {e}"), Some(Colour::Magenta)),
            };
            let word = match colour {
                Some(c) => paint.paint(c, &word),
                None => word,
            };
            s.push_str(&format!(
                "    - {} ({}) at {}: {word}\n",
                rule.id, rule.action, rule.location
            ));
        }
    }
    if !out.is_empty() {
        s.push_str(&format!("\nPolicies not in scope ({}):\n", out.len()));
        for r in &out {
            let why = match &r.scope {
                Scope::Out(fields) if !fields.is_empty() => {
                    format!("selector does not match: {}", fields.join("; "))
                }
                _ => format!(
                    "selector does not match {}",
                    workload_mismatch(&args.workload.workload())
                ),
            };
            s.push_str(&format!(
                "  {} ({}), {}: {why}\n",
                r.name,
                mode_word(r.mode),
                r.location
            ));
        }
    }
    s
}

pub fn outcome_json(o: &Outcome) -> Value {
    json!({
        "verdict": verdict_word(o.verdict),
        "policy": o.policy,
        "ruleId": o.rule,
        "message": o.message,
        "severity": o.severity,
        "response": o.response,
    })
}

fn to_json(args: &ExplainArgs, probe: &Probe, o: &Outcome, reports: &[PolicyReport]) -> Value {
    let w = args.workload.workload();
    let policies: Vec<Value> = reports
        .iter()
        .map(|r| {
            let (scope, not_matching) = match &r.scope {
                Scope::In => ("in", Vec::new()),
                Scope::Learn => ("learn", Vec::new()),
                Scope::Out(f) => ("out", f.clone()),
            };
            let rules: Vec<Value> = r
                .rules
                .iter()
                .map(|x| {
                    let (matched, verdict, error) = match &x.result {
                        None => (false, None, None),
                        Some(Ok(v)) => (true, Some(verdict_word(*v)), None),
                        Some(Err(e)) => (false, None, Some(e.clone())),
                    };
                    json!({"ruleId": x.id, "location": x.location, "action": x.action,
                           "matched": matched, "verdict": verdict, "error": error})
                })
                .collect();
            json!({
                "name": r.name,
                "location": r.location,
                "mode": mode_word(r.mode),
                "inScope": scope == "in" || scope == "learn",
                "learning": scope == "learn",
                "selectorMismatch": not_matching,
                "decisionAlone": r.alone.as_ref().map(outcome_json),
                "rules": rules,
            })
        })
        .collect();
    let labels: BTreeMap<_, _> = w.pod_labels.clone();
    let mut out = outcome_json(o);
    out["workload"] = json!({
        "namespace": w.namespace, "pod": w.pod_name, "labels": labels,
        "container": w.container_name, "image": w.image,
    });
    out["operation"] = Value::String(probe.describe());
    out["policies"] = Value::Array(policies);
    out
}
