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

    /// True when a read of `path` by a process whose executable is at `exe` needs more than that
    /// path to decide: whether the executable is the image's (some matching read rule limited to
    /// processes names `exe`: a file put there must not match it), or who runs it (some matching
    /// read rule limited to users applies to `exe`). False lets a caller skip finding either out.
    pub fn read_needs_subject(&self, path: &str, exe: &str) -> bool {
        let (Some(path), exe) = (normalize(path), normalize(exe)) else {
            return false;
        };
        let exe = exe.as_deref().unwrap_or("");
        let mut hits = Vec::new();
        let mut needs = false;
        self.files.for_each_match(&path, &mut hits, |owner, _| {
            if let Some(e) = self.file_entries.get(owner as usize)
                && e.access & Access::Read.bit() != 0
            {
                let names_exe = e.processes.as_ref().is_some_and(|p| p.is_match(exe));
                let for_exe = e.processes.as_ref().is_none_or(|p| p.is_match(exe));
                needs |= names_exe || (e.users.is_some() && for_exe);
            }
        });
        needs
    }

    /// True when some rule limited to processes names `exe` (file and network rules): only then
    /// does it matter whether that executable is the image's own file.
    pub fn names_process(&self, exe: &str) -> bool {
        let Some(exe) = normalize(exe) else {
            return false;
        };
        self.file_entries
            .iter()
            .chain(self.network.iter().map(|n| &n.entry))
            .any(|e| e.processes.as_ref().is_some_and(|p| p.is_match(&exe)))
    }

    /// True when an exec's decision can depend on whether the file is the image's: a drift rule
    /// applies, or an allowance (an allow-list, an `allow` process rule) could grant it.
    pub fn exec_depends_on_origin(&self) -> bool {
        self.policies.iter().any(|p| p.drift.is_some())
            || !self.allow_only.is_empty()
            || self
                .exec_entries
                .iter()
                .any(|e| e.verdict == Verdict::Allow)
    }

    /// True when some file rule is limited to users: deciding needs the accessing user.
    pub fn limits_users(&self) -> bool {
        self.file_entries.iter().any(|e| e.users.is_some())
    }

    /// True when an integrity rule applies: modifications of files matter even where no open was
    /// decided (the kernel auditor's write sensor).
    pub fn watches_integrity(&self) -> bool {
        !self.integrity_entries.is_empty()
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
    fn the_subject_is_looked_up_only_where_a_rule_could_tell_it_apart() {
        let v = view(&SEED.replace(
            "      processes: [\"/usr/sbin/nginx\"]\n",
            "      processes: [\"/usr/sbin/nginx\"]\n      users: [root]\n",
        ));
        // nginx reading passwd: the rule names it, and is for root only.
        assert!(v.read_needs_subject("/etc/passwd", "/usr/sbin/nginx"));
        // cat: no rule names it, and the users rule is nginx's: blocked whoever runs it.
        assert!(!v.read_needs_subject("/etc/passwd", "/bin/cat"));
        assert!(!v.read_needs_subject("/etc/shadow", "/usr/sbin/nginx"));
        // A users rule for every process needs the user of any.
        let any = view(&SEED.replace(
            "      processes: [\"/usr/sbin/nginx\"]\n",
            "      users: [root]\n",
        ));
        assert!(any.read_needs_subject("/etc/passwd", "/bin/cat"));
        assert!(v.names_process("/usr/sbin/nginx") && !v.names_process("/bin/cat"));
        // No drift rule, no allowance: an exec's origin changes nothing.
        assert!(!v.exec_depends_on_origin());
        let drift = view(&format!("{SEED}  drift: {{action: alert}}\n"));
        assert!(drift.exec_depends_on_origin());
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
