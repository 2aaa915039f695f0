//! Loading and reloading policy files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_policy::{Policy, Snapshot, parse_str};
use rampart_protos::agent::{PolicyLoadError, PolicySource, PolicyStatus};

/// What happened to one file on (re)load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Parsed and compiled with the rest: its policies are in force.
    Loaded { policies: Vec<String> },
    /// Unchanged since the last load.
    Unchanged,
    /// Bad: the message says where and why; the previous version (if any) stays in force.
    Rejected { error: String, kept_previous: bool },
    /// Deleted (or no longer a policy file): its policies are gone.
    Removed,
}

#[derive(Debug, Clone)]
struct LoadedFile {
    content: String,
    policies: Vec<Policy>,
    loaded_at: std::time::SystemTime,
}

#[derive(Debug)]
pub struct PolicyStore {
    dir: PathBuf,
    files: BTreeMap<PathBuf, LoadedFile>,
    errors: BTreeMap<PathBuf, String>,
    compiled: Arc<Snapshot>,
}

/// Policy files are YAML; editors' swap and backup files are not.
pub fn is_policy_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml")) && path.is_file()
}

impl PolicyStore {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
            errors: BTreeMap::new(),
            compiled: Arc::new(Snapshot::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads every policy file in the directory, and forgets files that are gone.
    pub fn load_all(&mut self) -> std::io::Result<BTreeMap<PathBuf, FileOutcome>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_policy_file(p))
            .collect();
        paths.sort();
        let mut out = BTreeMap::new();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .chain(self.errors.keys())
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for p in gone {
            out.insert(p.clone(), self.reload(&p));
        }
        for p in paths {
            out.insert(p.clone(), self.reload(&p));
        }
        Ok(out)
    }

    /// Re-reads one file (it may have been written, replaced or deleted).
    pub fn reload(&mut self, path: &Path) -> FileOutcome {
        if !is_policy_file(path) {
            self.errors.remove(path);
            if self.files.remove(path).is_none() {
                return FileOutcome::Unchanged;
            }
            // Removing policies can't make the rest fail to compile.
            self.recompile().ok();
            return FileOutcome::Removed;
        }
        let bytes = match std::fs::read(path) {
            Ok(c) => c,
            Err(e) => return self.reject(path, format!("{}: cannot read: {e}", path.display())),
        };
        let content = match rampart_policy::decode(&path.display().to_string(), &bytes) {
            Ok(c) => c.to_owned(),
            Err(e) => return self.reject(path, e.to_string()),
        };
        if self.files.get(path).is_some_and(|f| f.content == content) {
            self.errors.remove(path);
            return FileOutcome::Unchanged;
        }
        let policies = match parse_str(&path.display().to_string(), &content) {
            Ok(p) => p,
            Err(e) => return self.reject(path, e.to_string()),
        };
        for w in policies.iter().flat_map(|p| p.warnings()) {
            let hint = w.hint.clone().unwrap_or_default();
            tracing::warn!(file = %w.file, line = w.line, column = w.column, hint = %hint, "{}", w.message);
        }
        let names = policies.iter().map(|p| p.name().to_owned()).collect();
        let previous = self.files.insert(
            path.to_owned(),
            LoadedFile {
                content,
                policies,
                loaded_at: std::time::SystemTime::now(),
            },
        );
        if let Err(e) = self.recompile() {
            match previous {
                Some(prev) => self.files.insert(path.to_owned(), prev),
                None => self.files.remove(path),
            };
            return self.reject(path, e);
        }
        self.errors.remove(path);
        FileOutcome::Loaded { policies: names }
    }

    fn reject(&mut self, path: &Path, error: String) -> FileOutcome {
        self.errors.insert(path.to_owned(), error.clone());
        FileOutcome::Rejected {
            error,
            kept_previous: self.files.contains_key(path),
        }
    }

    fn recompile(&mut self) -> Result<(), String> {
        let all = self.files.values().flat_map(|f| f.policies.iter().cloned());
        let snapshot = Snapshot::new(all).map_err(|e| e.to_string())?;
        self.compiled = Arc::new(snapshot);
        Ok(())
    }

    /// The compiled snapshot of every file's last good version.
    pub fn compiled(&self) -> Arc<Snapshot> {
        self.compiled.clone()
    }

    /// What agents receive: the text of every file in force.
    pub fn sources(&self) -> Vec<PolicySource> {
        self.files
            .iter()
            .map(|(p, f)| PolicySource {
                file: p.display().to_string(),
                content: f.content.clone(),
            })
            .collect()
    }

    /// Files whose current version is rejected, with why.
    pub fn errors(&self) -> &BTreeMap<PathBuf, String> {
        &self.errors
    }

    /// Every policy in force, for `rampartctl status`.
    pub fn statuses(&self) -> Vec<PolicyStatus> {
        use std::hash::{Hash, Hasher};
        let mut out: Vec<PolicyStatus> = self
            .files
            .iter()
            .flat_map(|(path, f)| {
                // Tells versions of a file apart; not a cryptographic digest.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                f.content.hash(&mut h);
                let hash = format!("{:016x}", h.finish());
                f.policies.iter().map(move |p| {
                    let mode = serde_json::to_value(p.doc.spec.value.mode)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    PolicyStatus {
                        name: p.name().to_owned(),
                        file: path.display().to_string(),
                        mode,
                        content_hash: hash.clone(),
                        loaded_at_ms: crate::api::status::unix_ms(f.loaded_at),
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Files whose current version is rejected, for `rampartctl status`.
    pub fn load_errors(&self) -> Vec<PolicyLoadError> {
        self.errors
            .iter()
            .map(|(p, e)| PolicyLoadError {
                file: p.display().to_string(),
                message: e.clone(),
            })
            .collect()
    }

    /// (file, policy names) in force.
    pub fn loaded(&self) -> Vec<(PathBuf, Vec<String>)> {
        self.files
            .iter()
            .map(|(p, f)| {
                (
                    p.clone(),
                    f.policies.iter().map(|p| p.name().to_owned()).collect(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_policy::{Access, Operation, Verdict, Workload};

    const GOOD: &str = "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {name: NoShadow}\nspec:\n  files:\n    - {paths: [\"/etc/shadow\"], access: [read], action: block}\n";

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampartd-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn blocks_shadow(s: &PolicyStore) -> bool {
        let view = s.compiled().for_workload(&Workload::default());
        let op = Operation::FileAccess {
            path: "/etc/shadow",
            access: Access::Read,
            process: "/bin/cat",
        };
        view.decide(&op).verdict == Verdict::Block
    }

    #[test]
    fn a_broken_edit_is_rejected_with_its_position_and_the_old_version_keeps_deciding() {
        let d = dir("edit");
        let f = d.join("shadow.yaml");
        std::fs::write(&f, GOOD).unwrap();
        let mut s = PolicyStore::new(&d);
        let out = s.load_all().unwrap();
        assert_eq!(
            out[&f],
            FileOutcome::Loaded {
                policies: vec!["NoShadow".into()]
            }
        );
        assert!(blocks_shadow(&s));

        std::fs::write(&f, GOOD.replace("access:", "acess:")).unwrap();
        match s.reload(&f) {
            FileOutcome::Rejected {
                error,
                kept_previous,
            } => {
                assert!(kept_previous);
                assert!(error.contains("shadow.yaml:6:"), "{error}");
                assert!(error.contains("acess"), "{error}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(
            blocks_shadow(&s),
            "the last good version must keep deciding"
        );
        assert!(s.errors().contains_key(&f));

        std::fs::write(&f, GOOD).unwrap();
        assert_eq!(s.reload(&f), FileOutcome::Unchanged);
        assert!(s.errors().is_empty());
        std::fs::remove_file(&f).unwrap();
        assert_eq!(s.reload(&f), FileOutcome::Removed);
        assert!(!blocks_shadow(&s));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_edit_that_is_not_utf8_is_rejected_at_the_bad_byte() {
        let d = dir("utf8");
        let f = d.join("shadow.yaml");
        std::fs::write(&f, GOOD).unwrap();
        let mut s = PolicyStore::new(&d);
        s.load_all().unwrap();
        // A Latin-1 é on the first line.
        let mut latin1 = b"# caf\xe9\n".to_vec();
        latin1.extend_from_slice(GOOD.as_bytes());
        std::fs::write(&f, latin1).unwrap();
        match s.reload(&f) {
            FileOutcome::Rejected {
                error,
                kept_previous,
            } => {
                assert!(kept_previous);
                assert!(
                    error.contains("shadow.yaml:1:6: not valid UTF-8 (byte 0xe9)"),
                    "{error}"
                );
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(blocks_shadow(&s), "the last good version keeps deciding");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_duplicate_name_in_another_file_is_rejected_not_half_applied() {
        let d = dir("dup");
        std::fs::write(d.join("a.yaml"), GOOD).unwrap();
        let mut s = PolicyStore::new(&d);
        s.load_all().unwrap();
        std::fs::write(d.join("b.yaml"), GOOD).unwrap();
        assert!(matches!(
            s.reload(&d.join("b.yaml")),
            FileOutcome::Rejected {
                kept_previous: false,
                ..
            }
        ));
        assert_eq!(s.sources().len(), 1);
        assert!(blocks_shadow(&s));
        // Editor leftovers are not policy files.
        std::fs::write(d.join(".a.yaml.swp"), "junk").unwrap();
        std::fs::write(d.join("notes.txt"), "junk").unwrap();
        let out = s.load_all().unwrap();
        assert!(!out.contains_key(&d.join("notes.txt")));
        std::fs::remove_dir_all(d).unwrap();
    }
}
