//! Every YAML example in docs/policy.md parses: the reference cannot drift from the parser.

const DOC: &str = include_str!("../../docs/policy.md");

fn yaml_blocks() -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in DOC.lines() {
        match (&mut cur, line.trim_start()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_yaml_example_parses() {
    let blocks = yaml_blocks();
    assert!(blocks.len() >= 8, "found {} yaml blocks", blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let text = if b.starts_with("apiVersion:") {
            b.clone()
        } else {
            // A fragment of `spec`: wrap it, with a rule if it is only a selector.
            let mut spec: String = b.lines().map(|l| format!("  {l}\n")).collect();
            if b.starts_with("selector:") {
                spec.push_str("  drift: {action: alert}\n");
            }
            format!(
                "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {{name: doc-{i}}}\nspec:\n{spec}"
            )
        };
        if let Err(e) = rampart_policy::parse_str(&format!("docs/policy.md block {i}"), &text) {
            panic!("{e}\n---\n{text}");
        }
    }
}

#[test]
fn seed_in_docs_is_the_example_file() {
    let seed = include_str!("../../config/examples/disallow-etc-access-for-nginx.yaml");
    let body: String = seed
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(yaml_blocks()[0], body);
}
