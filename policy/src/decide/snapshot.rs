//! The policy set agents receive, and the per-workload view it gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::WorkloadView;
use crate::compile::CompiledPolicy;
use crate::error::{Diagnostic, Error};
use crate::parse::Policy;
use crate::selector::Workload;

/// All policies, compiled; what agents receive. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sorted by name, so ties resolve the same way on every node.
    policies: Vec<Arc<CompiledPolicy>>,
}

impl Snapshot {
    /// Fails if two policies share a name (alerts would be ambiguous).
    pub fn new(policies: impl IntoIterator<Item = Policy>) -> Result<Snapshot, Error> {
        let mut by_name: BTreeMap<String, Policy> = BTreeMap::new();
        let mut diags = Vec::new();
        for p in policies {
            if let Some(first) = by_name.get(p.name()) {
                let n = &p.doc.metadata.name;
                diags.push(
                    Diagnostic::new(
                        &p.file,
                        n.line,
                        n.column,
                        format!("duplicate policy name `{}`", p.name()),
                    )
                    .with_hint(format!(
                        "the first is at {}; policy names must be unique",
                        first.location()
                    )),
                );
                continue;
            }
            by_name.insert(p.name().to_owned(), p);
        }
        if !diags.is_empty() {
            return Err(Error::Invalid(diags));
        }
        Ok(Snapshot {
            policies: by_name.into_values().map(|p| p.compiled).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// The policies that apply to `w`, with their rules merged into matchers. Build it once per
    /// container (and again when the snapshot changes), then call [`WorkloadView::decide`].
    pub fn for_workload(&self, w: &Workload) -> WorkloadView {
        let selected: Vec<Arc<CompiledPolicy>> = self
            .policies
            .iter()
            .filter(|p| p.selector.matches(w))
            .cloned()
            .collect();
        WorkloadView::build(selected)
    }
}
