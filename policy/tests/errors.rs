//! Every bad file names file:line:column, what is wrong, and a hint.

use rampart_policy::{Diagnostic, Error, parse_str};

fn diags(yaml: &str) -> Vec<Diagnostic> {
    match parse_str("bad.yaml", yaml) {
        Ok(p) => panic!("expected an error, parsed {} policies", p.len()),
        Err(Error::Invalid(d)) => d,
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fn one(yaml: &str) -> Diagnostic {
    let d = diags(yaml);
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

const HEAD: &str =
    "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {name: P}\nspec:\n";

fn with_spec(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn unknown_field_with_suggestion() {
    let y = with_spec(
        "  files:\n    - paths: [\"/etc/**\"]\n      acess: [read]\n      action: block\n",
    );
    let d = one(&y);
    assert_eq!((d.line, d.column), (7, 7), "{d}");
    assert!(d.message.contains("unknown field `acess`"), "{d}");
    assert!(d.message.contains("access"), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `access`?"));
    assert!(
        d.to_string()
            .starts_with("bad.yaml:7:7: unknown field `acess`"),
        "{d}"
    );
}

#[test]
fn unknown_variant_with_suggestion() {
    let d = one(&with_spec("  mode: enforc\n  drift: {action: block}\n"));
    assert_eq!((d.line, d.column), (5, 9), "{d}");
    assert!(d.message.contains("enforc"), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `enforce`?"), "{d}");
}

#[test]
fn scalar_where_a_list_belongs() {
    let y = with_spec(
        "  files:\n    - paths: [\"/etc/**\"]\n      access: read\n      action: block\n",
    );
    let d = one(&y);
    assert_eq!((d.line, d.column), (7, 15), "{d}");
    assert!(d.hint.as_deref().unwrap().contains("list"), "{d}");
}

#[test]
fn unknown_field_without_close_match_has_no_bogus_hint() {
    let d = one(&with_spec("  zzzzzz: 1\n"));
    assert_eq!((d.line, d.column), (5, 3), "{d}");
    assert!(d.message.contains("expected one of selector"), "{d}");
    assert_eq!(d.hint, None);
}

#[test]
fn missing_field() {
    let d = one(&with_spec("  files:\n    - paths: [\"/etc/**\"]\n"));
    assert_eq!(d.line, 6, "{d}");
    assert!(d.message.contains("missing field `action`"), "{d}");
    assert!(d.hint.is_some());
}

#[test]
fn yaml_syntax_error() {
    let d = one(&with_spec("  files: [\n"));
    assert_eq!(d.line, 5, "{d}");
    assert!(d.column > 0);
}

#[test]
fn wrong_api_version_and_kind() {
    let y = "apiVersion: rampart.dev/v1\nkind: Policy\nmetadata: {name: P}\nspec:\n  drift: {action: alert}\n";
    let d = diags(y);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), (1, 13));
    assert!(
        d[0].hint
            .as_deref()
            .unwrap()
            .contains("rampart.dev/v1alpha1")
    );
    assert_eq!((d[1].line, d[1].column), (2, 7));
    assert!(d[1].hint.as_deref().unwrap().contains("RuntimePolicy"));
}

#[test]
fn bad_glob_points_at_the_glob() {
    let y = with_spec("  files:\n    - paths: [\"/etc/**\", \"/var/[log\"]\n      action: block\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (6, 26), "{d}");
    assert!(d.message.contains("invalid glob `/var/[log`"), "{d}");
}

#[test]
fn relative_glob_is_refused() {
    let d = one(&with_spec(
        "  files:\n    - paths: [etc/passwd]\n      action: block\n",
    ));
    assert_eq!((d.line, d.column), (6, 15), "{d}");
    assert!(d.message.contains("not absolute"), "{d}");
    assert!(d.hint.as_deref().unwrap().contains("/etc/passwd"), "{d}");
}

#[test]
fn bad_cidr_and_port() {
    let y = with_spec(
        "  network:\n    - cidrs: [\"10.0.0.0/8\", \"10.0.0.1/33\"]\n      ports: [443, \"9000-8000\", 70000]\n      action: block\n",
    );
    let d = diags(&y);
    assert_eq!(d.len(), 3, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), (6, 29), "{}", d[0]);
    assert!(d[0].message.contains("prefix length"), "{}", d[0]);
    assert_eq!((d[1].line, d[1].column), (7, 20), "{}", d[1]);
    assert!(d[1].message.contains("backwards"), "{}", d[1]);
    assert_eq!((d[2].line, d[2].column), (7, 33), "{}", d[2]);
    assert!(d[2].message.contains("70000"), "{}", d[2]);
}

#[test]
fn unknown_syscall_with_suggestion() {
    let y = with_spec("  hardening:\n    syscalls: [bpf, io_uring_setpu, ptrace]\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (6, 21), "{d}");
    assert!(d.message.contains("io_uring_setpu"), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `io_uring_setup`?"));
}

#[test]
fn empty_allow_list_is_refused() {
    let y = with_spec("  processes:\n    - allowOnly: []\n      action: block\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (6, 18), "{d}");
    assert!(d.message.contains("empty `allowOnly`"), "{d}");
}

#[test]
fn process_rule_needs_exactly_one_list() {
    let y = with_spec("  processes:\n    - action: block\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (6, 7), "{d}");
    assert!(d.message.contains("needs `paths` or `allowOnly`"), "{d}");
}

#[test]
fn bad_message_template() {
    let y = with_spec("  message: \"read {pth}\"\n  drift: {action: block}\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (5, 12), "{d}");
    assert!(
        d.hint.as_deref().unwrap().contains("did you mean `{path}`"),
        "{d}"
    );
}

#[test]
fn label_expression_checks() {
    let y = with_spec(
        "  selector:\n    podLabels:\n      matchExpressions:\n        - {key: app, operator: In}\n  drift: {action: block}\n",
    );
    let d = one(&y);
    assert_eq!((d.line, d.column), (8, 11), "{d}");
    assert!(d.message.contains("non-empty `values`"), "{d}");
}

#[test]
fn policy_without_rules() {
    let d = one(&with_spec("  mode: audit\n"));
    assert_eq!(d.line, 5, "{d}");
    assert!(d.message.contains("no rules"), "{d}");
}

#[test]
fn errors_in_second_document_have_their_own_lines() {
    let y = format!("{HEAD}  drift: {{action: block}}\n---\n{HEAD}  drift: {{action: alow}}\n");
    let d = one(&y);
    assert_eq!((d.line, d.column), (11, 19), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `allow`?"), "{d}");
}

#[test]
fn duplicate_names_across_files() {
    let a = parse_str("a.yaml", &with_spec("  drift: {action: block}\n")).unwrap();
    let b = parse_str("b.yaml", &with_spec("  drift: {action: alert}\n")).unwrap();
    let err = rampart_policy::Snapshot::new(a.into_iter().chain(b)).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.file, "b.yaml");
    assert_eq!((d.line, d.column), (3, 18));
    assert!(d.hint.as_deref().unwrap().contains("a.yaml:3:18"), "{d}");
}

#[test]
fn empty_file_is_an_error() {
    let d = one("# nothing here\n");
    assert!(d.message.contains("no policy"), "{d}");
}

#[test]
fn garbage_never_panics() {
    for y in [
        "",
        "---\n---\n",
        "[1, 2",
        "apiVersion: 3",
        "spec: !!binary xx",
        "a: &x [*x]",
        "\u{0}\u{1}",
        "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
    ] {
        let _ = parse_str("x.yaml", y);
    }
}

#[test]
fn a_file_that_is_not_utf8_names_the_bad_byte_by_line_and_column() {
    let mut bytes = with_spec("  files:\n    - paths: [\"/etc/").into_bytes();
    bytes.extend_from_slice(b"\xe9t\xe9\"]\n      action: block\n");
    let dir = std::env::temp_dir().join(format!("rampart-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.yaml");
    std::fs::write(&path, &bytes).unwrap();
    let err = rampart_policy::load_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let Error::Invalid(d) = err else {
        panic!("expected a diagnostic, got {err}")
    };
    assert_eq!((d[0].line, d[0].column), (6, 21), "{}", d[0]);
    assert!(
        d[0].message.contains("not valid UTF-8 (byte 0xe9)"),
        "{}",
        d[0]
    );
    assert!(d[0].hint.as_deref().unwrap().contains("UTF-8"), "{}", d[0]);
    // Characters before the bad byte count once each, whatever their length in bytes.
    let d = rampart_policy::decode("f.yaml", b"\xc3\xa9\n  \xc3\xbc x\xff").unwrap_err();
    let Error::Invalid(d) = d else { unreachable!() };
    assert_eq!((d[0].line, d[0].column), (2, 6));
}

#[test]
fn an_ingress_rule_can_t_kill() {
    let d = one(&with_spec(
        "  network:\n    - {direction: ingress, cidrs: [10.0.0.0/8], action: block, response: kill-pod}\n",
    ));
    assert_eq!((d.line, d.column), (6, 7), "{d}");
    assert!(d.message.contains("can't kill"), "{d}");
    assert!(d.hint.as_deref().unwrap_or("").contains("forged"), "{d}");
    // Egress rules may: the process that connects is known.
    parse_str(
        "ok.yaml",
        &with_spec(
            "  network:\n    - {cidrs: [10.0.0.0/8], action: block, response: kill-process}\n",
        ),
    )
    .unwrap();
}
