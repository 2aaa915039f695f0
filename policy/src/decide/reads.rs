//! What the kernel-side file guard needs to know about a workload's read rules: whether reads are
//! decided at all, and whether a read decision may stand for every process of the workload (the
//! condition for remembering an allow in the kernel).

use super::WorkloadView;
use crate::compile::Verdict;
use crate::model::Access;
use crate::paths::normalize;

impl WorkloadView {
    /// True when some rule that is not a plain allow decides reads: reads must then be checked.
    pub fn guards_reads(&self) -> bool {
        self.file_entries
            .iter()
            .any(|e| e.verdict != Verdict::Allow && e.access & Access::Read.bit() != 0)
    }

    /// True when a read of `path` may be decided differently for different processes: some read
    /// rule matching the path names processes or users. Such a decision must not be remembered
    /// for the whole workload. A path that does not normalize matches no rule and depends on
    /// nothing.
    pub fn read_depends_on_process(&self, path: &str) -> bool {
        let Some(path) = normalize(path) else {
            return false;
        };
        let mut hits = Vec::new();
        let mut depends = false;
        self.files.for_each_match(&path, &mut hits, |owner, _| {
            if let Some(e) = self.file_entries.get(owner as usize)
                && e.access & Access::Read.bit() != 0
                && (e.processes.is_some() || e.users.is_some())
            {
                depends = true;
            }
        });
        depends
    }

    /// True when some file rule is limited to users: deciding needs the accessing user.
    pub fn limits_users(&self) -> bool {
        self.file_entries.iter().any(|e| e.users.is_some())
    }

    /// True when decisions are being recorded for learning: each access must be seen.
    pub fn is_learning(&self) -> bool {
        self.learning
    }
}

#[cfg(test)]
mod tests {
    use crate::{Snapshot, Workload, parse_str};

    fn view(yaml: &str) -> crate::WorkloadView {
        let s = Snapshot::new(parse_str("p.yaml", yaml).unwrap()).unwrap();
        s.for_workload(&Workload {
            container_name: "nginx".into(),
            ..Default::default()
        })
    }

    const SEED: &str = r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: Seed}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  files:
    - paths: ["/etc/**"]
      access: [read]
      action: block
    - paths: ["/etc/passwd"]
      processes: ["/usr/sbin/nginx"]
      access: [read]
      action: allow
"#;

    #[test]
    fn a_process_qualified_rule_makes_its_paths_depend_on_the_process() {
        let v = view(SEED);
        assert!(v.guards_reads());
        assert!(v.read_depends_on_process("/etc/passwd"));
        assert!(!v.read_depends_on_process("/etc/shadow"));
        assert!(!v.read_depends_on_process("/usr/share/nginx/html/index.html"));
        assert!(!v.is_learning());
    }

    #[test]
    fn write_only_rules_do_not_guard_reads() {
        let v = view(
            r#"
apiVersion: rampart.dev/v1alpha1
kind: RuntimePolicy
metadata: {name: W}
spec:
  selector: {containerNames: [nginx]}
  mode: enforce
  files:
    - paths: ["/usr/share/nginx/html/**"]
      access: [write, create]
      action: block
"#,
        );
        assert!(!v.guards_reads());
    }
}
