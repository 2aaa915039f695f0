//! The candidate matches of one decision and how they combine: an allow cancels its own
//! policy's block and alert, then the strictest verdict wins, then the most specific match.

use crate::compile::Verdict;
use crate::model::Severity;

/// A candidate match while deciding; [`Cand::beats`] orders same-verdict matches.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cand {
    pub(super) policy: u32,
    pub(super) rule: u32,
    pub(super) verdict: Verdict,
    pub(super) specificity: u32,
    pub(super) severity: Severity,
}

impl Cand {
    /// True if `self` should name the decision instead of `other`.
    pub(super) fn beats(&self, other: &Cand) -> bool {
        (self.verdict, self.specificity, self.severity)
            .cmp(&(other.verdict, other.specificity, other.severity))
            .then_with(|| (other.policy, other.rule).cmp(&(self.policy, self.rule)))
            .is_gt()
    }
}

/// Folds candidates, applying "an allow cancels its own policy's block/alert".
///
/// Per-policy slots are stamped with a generation instead of being cleared, so a decision
/// costs O(matches), not O(policies in the view).
#[derive(Default)]
pub(super) struct Combiner {
    generation: u32,
    slots: Vec<Slot>,
    touched: Vec<u32>,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    generation: u32,
    deny: Option<Cand>,
    allow: Option<Cand>,
}

impl Combiner {
    pub(super) fn reset(&mut self, policies: usize) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: stale stamps could collide, so clear them once every 2^32 decisions.
            self.slots.iter_mut().for_each(|s| s.generation = 0);
            self.generation = 1;
        }
        if self.slots.len() < policies {
            self.slots.resize(policies, Slot::default());
        }
        self.touched.clear();
    }

    pub(super) fn add(&mut self, c: Cand) {
        let Some(slot) = self.slots.get_mut(c.policy as usize) else {
            return;
        };
        if slot.generation != self.generation {
            *slot = Slot {
                generation: self.generation,
                deny: None,
                allow: None,
            };
            self.touched.push(c.policy);
        }
        let target = if c.verdict == Verdict::Allow {
            &mut slot.allow
        } else {
            &mut slot.deny
        };
        if target.is_none_or(|t| c.beats(&t)) {
            *target = Some(c);
        }
    }

    pub(super) fn finish(&self) -> Option<Cand> {
        let mut best: Option<Cand> = None;
        let mut best_allow: Option<Cand> = None;
        for &p in &self.touched {
            let Some(slot) = self.slots.get(p as usize) else {
                continue;
            };
            let (target, c) = match (slot.deny, slot.allow) {
                (_, Some(a)) => (&mut best_allow, a),
                (Some(d), None) => (&mut best, d),
                (None, None) => continue,
            };
            if target.is_none_or(|t| c.beats(&t)) {
                *target = Some(c);
            }
        }
        best.or(best_allow)
    }
}
