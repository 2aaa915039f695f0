//! `rampartctl policy lint|explain|test`, running the built binary against the example policies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("policyd is in the workspace")
        .to_owned()
}

fn examples() -> PathBuf {
    workspace().join("config/examples")
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rampartctl_data")
        .join(name)
}

fn rampartctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampartctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("rampartctl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn lint_passes_on_the_examples() {
    let out = rampartctl(&["policy", "lint", examples().to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("DisallowEtcAccessForNginx"));

    let out = rampartctl(&["policy", "lint", "-o", "json", examples().to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["policies"][0]["name"], "DisallowEtcAccessForNginx");
}

#[test]
fn lint_of_a_broken_file_exits_1_with_its_place() {
    let broken = data("broken.yaml");
    let path = broken.to_str().unwrap();
    let out = rampartctl(&["policy", "lint", examples().to_str().unwrap(), path]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{path}:6:9: error: unknown variant `enforc`")),
        "stdout: {stdout}"
    );
    assert!(stdout.contains("hint: did you mean `enforce`?"), "{stdout}");

    let out = rampartctl(&["policy", "lint", "-o", "json", path]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["file"], path);
    assert_eq!(v["errors"][0]["line"], 6);
    assert_eq!(v["errors"][0]["column"], 9);
}

/// A policy that loads but has parts rampart can't enforce says so, without failing the lint.
#[test]
fn lint_warns_about_ingress_rules_limited_to_processes() {
    let file = data("ingress.yaml");
    let path = file.to_str().unwrap();
    let out = rampartctl(&["policy", "lint", path]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{path}:8:7: warning: ingress rule `ssh-in` is limited to processes, so it decides nothing"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("hint: ingress is decided in the kernel on each arriving packet"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("warning:").count(), 1, "{stdout}");

    let out = rampartctl(&["policy", "lint", "-o", "json", path]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["warnings"][0]["line"], 8);
    let examples = rampartctl(&["policy", "lint", "-o", "json", examples().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&examples.stdout).unwrap();
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn lint_of_a_missing_path_exits_1() {
    let out = rampartctl(&["policy", "lint", "/nonexistent/rampart/policy.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/nonexistent/rampart/policy.yaml: error: cannot read"));
}

/// The done-when of issue 3: cat reading /etc/passwd in nginx is Blocked by the seed policy.
#[test]
fn explain_says_blocked_by_the_seed_policy() {
    let dir = examples();
    let base = [
        "policy",
        "explain",
        "--policies",
        dir.to_str().unwrap(),
        "--pod",
        "vulnerable-nginx-pod",
        "--container",
        "nginx",
        "--read",
        "/etc/passwd",
        "--process",
        "/bin/cat",
    ];
    let out = rampartctl(&base);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Blocked by DisallowEtcAccessForNginx rule files[0]"),
        "{stdout}"
    );
    assert!(stdout.contains(
        "message: File access to /etc/passwd by nginx container is prohibited by policy."
    ));
    assert!(stdout.contains("Policies in scope (1):"), "{stdout}");
    assert!(stdout.contains("files[0] (block)"), "{stdout}");
    assert!(stdout.contains(": matches: Blocked"), "{stdout}");

    let mut json_args = base.to_vec();
    json_args.extend(["-o", "json"]);
    let out = rampartctl(&json_args);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "Blocked");
    assert_eq!(v["policy"], "DisallowEtcAccessForNginx");
    assert_eq!(v["ruleId"], "files[0]");
    assert_eq!(v["severity"], "High");
    let rules = v["policies"][0]["rules"].as_array().unwrap();
    let matched: Vec<&str> = rules
        .iter()
        .filter(|r| r["matched"] == true)
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(matched, ["files[0]"]);
}

#[test]
fn explain_shows_the_allow_that_cancels_and_policies_out_of_scope() {
    let dir = examples();
    let d = dir.to_str().unwrap();
    let out = rampartctl(&[
        "policy",
        "explain",
        "--policies",
        d,
        "--pod",
        "web",
        "--container",
        "nginx",
        "--read",
        "/etc/passwd",
        "--process",
        "/usr/sbin/nginx",
        "--user",
        "root",
    ]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Allowed by DisallowEtcAccessForNginx rule files[1]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("which cancels this policy's files[0]"),
        "{stdout}"
    );

    let out = rampartctl(&[
        "policy",
        "explain",
        "--policies",
        d,
        "--pod",
        "cache",
        "--container",
        "redis",
        "--exec",
        "/bin/sh",
        "-o",
        "json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "Allowed");
    assert_eq!(v["policies"][0]["inScope"], false);
    assert_eq!(
        v["policies"][0]["selectorMismatch"][0],
        r#"containerNames: ["nginx"]"#
    );
}

#[test]
fn explain_needs_exactly_one_operation() {
    let dir = examples();
    let out = rampartctl(&[
        "policy",
        "explain",
        "--policies",
        dir.to_str().unwrap(),
        "--pod",
        "p",
        "--container",
        "nginx",
    ]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

#[test]
fn policy_test_passes_and_fails() {
    let dir = examples();
    let d = dir.to_str().unwrap();
    let pass = data("cases-pass.yaml");
    let out = rampartctl(&["policy", "test", "--policies", d, pass.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.trim_end().ends_with("3 passed, 0 failed"),
        "{stdout}"
    );

    let fail = data("cases-fail.yaml");
    let out = rampartctl(&["policy", "test", "--policies", d, fail.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("1 passed, 1 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: expected Allowed, got Blocked by DisallowEtcAccessForNginx"),
        "{stdout}"
    );

    let out = rampartctl(&[
        "policy",
        "test",
        "-o",
        "json",
        "--policies",
        d,
        fail.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], 1);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["cases"][1]["got"]["verdict"], "Blocked");
}
