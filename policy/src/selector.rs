//! Which workloads a policy applies to.
//!
//! Every field that is set must match (AND); within a list any entry may match (OR). Names and
//! images are globs where `*` matches any run of characters, `/` and `:` included, so
//! `docker.io/library/nginx:*` matches every tag.

use std::collections::BTreeMap;

use globset::GlobMatcher;

use crate::model::LabelOperator;

/// The workload an operation comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub pod_name: String,
    pub pod_labels: BTreeMap<String, String>,
    pub container_name: String,
    pub image: String,
}

#[derive(Debug, Clone)]
pub(crate) struct NamePatterns(Vec<GlobMatcher>);

impl NamePatterns {
    pub(crate) fn new(m: Vec<GlobMatcher>) -> Self {
        NamePatterns(m)
    }

    /// An empty list places no restriction.
    fn matches(&self, s: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|g| g.is_match(s))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LabelRequirement {
    pub(crate) key: String,
    pub(crate) op: LabelOperator,
    pub(crate) values: Vec<String>,
}

impl LabelRequirement {
    /// Kubernetes semantics: `NotIn` and `DoesNotExist` match pods without the label.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            LabelOperator::In => v.is_some_and(|v| self.values.contains(v)),
            LabelOperator::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            LabelOperator::Exists => v.is_some(),
            LabelOperator::DoesNotExist => v.is_none(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledSelector {
    pub(crate) namespaces: NamePatterns,
    pub(crate) pod_names: NamePatterns,
    pub(crate) container_names: NamePatterns,
    pub(crate) images: NamePatterns,
    pub(crate) match_labels: BTreeMap<String, String>,
    pub(crate) requirements: Vec<LabelRequirement>,
}

impl CompiledSelector {
    pub(crate) fn matches(&self, w: &Workload) -> bool {
        self.namespaces.matches(&w.namespace)
            && self.pod_names.matches(&w.pod_name)
            && self.container_names.matches(&w.container_name)
            && self.images.matches(&w.image)
            && self
                .match_labels
                .iter()
                .all(|(k, v)| w.pod_labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| r.matches(&w.pod_labels))
    }
}
