//! Reported decisions → alert records → sinks, with deduplication and a per-workload rate limit
//! in between. Every record that is not written is counted ([`PipelineStats`]), so `rampartctl
//! status` shows what was held back and why.

pub mod enrich;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_policy::Alert;
use tracing::{error, warn};

use crate::alerting::dedup::{Deduper, Seen};
use crate::alerting::ratelimit::RateLimiter;
use crate::api::ReportedEvent;
use crate::sink::buffered::{BufferedJournal, Delivery};
use crate::sink::journald::encode_entry;
use crate::sink::json_lines::JsonLines;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub node_name: String,
    /// Repeats of the same (pod, rule, object, action) within this window are counted, not written.
    pub dedup_window: Duration,
    /// Records per second per workload, on average, and the burst allowed above it.
    pub rate: f64,
    pub burst: u32,
    /// journald's socket; None: don't write to journald.
    pub journal: Option<std::path::PathBuf>,
    /// Entries held while journald is unreachable.
    pub journal_queue: usize,
}

/// Counters for `rampartctl status`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub written: AtomicU64,
    pub deduplicated: AtomicU64,
    pub rate_limited: AtomicU64,
    pub malformed: AtomicU64,
    pub journal_dropped: AtomicU64,
    pub journal_queued: AtomicU64,
    pub sink_errors: AtomicU64,
}

/// What makes two records "the same" for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DedupKey {
    namespace: String,
    pod: String,
    container: String,
    policy: String,
    rule: String,
    object: String,
    action: &'static str,
}

impl DedupKey {
    fn of(a: &Alert) -> Self {
        let object = a
            .file_path
            .clone()
            .or_else(|| {
                a.remote_address
                    .as_ref()
                    .map(|r| format!("{r}:{}", a.remote_port.unwrap_or(0)))
            })
            .or_else(|| a.syscall.clone())
            .or_else(|| a.process_path.clone())
            .unwrap_or_default();
        DedupKey {
            namespace: a.namespace.clone().unwrap_or_default(),
            pod: a.pod_name.clone(),
            container: a.container_name.clone(),
            policy: a.policy_name.clone(),
            rule: a.rule_id.clone().unwrap_or_default(),
            object,
            action: a.action.as_str(),
        }
    }
}

pub struct Pipeline {
    config: PipelineConfig,
    dedup: Deduper<DedupKey>,
    /// The first record of each open window, for its summary.
    firsts: HashMap<DedupKey, Alert>,
    rate: RateLimiter<String>,
    journal: Option<BufferedJournal>,
    json: Option<JsonLines>,
    stats: Arc<PipelineStats>,
}

impl Pipeline {
    pub fn new(config: PipelineConfig, json: Option<&Path>) -> std::io::Result<Self> {
        let json = json.map(JsonLines::open).transpose()?;
        Ok(Self {
            dedup: Deduper::new(config.dedup_window),
            firsts: HashMap::new(),
            rate: RateLimiter::new(config.rate, config.burst),
            journal: config
                .journal
                .as_deref()
                .map(|p| BufferedJournal::new(p, config.journal_queue)),
            json,
            stats: Arc::new(PipelineStats::default()),
            config,
        })
    }

    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// Handles one reported event. Returns the alert if it was written (responses such as
    /// kill-pod follow written alerts, and repeats of one too: see the caller).
    pub fn handle(&mut self, reported: &ReportedEvent, now: Instant) -> Option<Alert> {
        let alert = match enrich::alert(reported, &self.config.node_name) {
            Ok(a) => a,
            Err(e) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "dropping a malformed event from an agent");
                return None;
            }
        };
        let key = DedupKey::of(&alert);
        if self.dedup.observe(&key, now) == Seen::Repeat {
            self.stats.deduplicated.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let workload = format!("{}/{}", key.namespace, key.pod);
        if !self.rate.allow(&workload, now) {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.firsts.insert(key, alert.clone());
        self.write(&alert, None);
        Some(alert)
    }

    /// Closes deduplication windows (writing one summary per window that saw repeats) and
    /// retries journald. Call about once a second.
    pub fn tick(&mut self, now: Instant) {
        for closed in self.dedup.expire(now) {
            let Some(mut summary) = self.firsts.remove(&closed.key) else {
                continue;
            };
            summary.message = format!(
                "{} (repeated {} more times in {}s)",
                summary.message,
                closed.repeats,
                closed.over.as_secs().max(1)
            );
            summary.timestamp = rampart_policy::Timestamp::now();
            self.write(&summary, Some(closed.repeats));
        }
        // Windows that closed without repeats need no summary.
        let dedup = &self.dedup;
        if self.firsts.len() > dedup.open_windows() {
            self.firsts.retain(|k, _| dedup.is_open(k));
        }
        if let Some(j) = &mut self.journal {
            j.flush();
            self.stats
                .journal_queued
                .store(j.queued() as u64, Ordering::Relaxed);
        }
    }

    fn write(&mut self, alert: &Alert, repeats: Option<u64>) {
        self.stats.written.fetch_add(1, Ordering::Relaxed);
        if let Some(json) = &mut self.json
            && let Err(e) = json.write(&alert.to_json())
        {
            self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
            error!(error = %e, sink = %json.describe(), "writing an alert failed");
        }
        if let Some(journal) = &mut self.journal {
            let mut fields = alert.journal_fields();
            if let Some(n) = repeats {
                fields.push(("RAMPART_REPEATED", n.to_string()));
            }
            let entry = match encode_entry(fields.iter().map(|(k, v)| (*k, v.as_bytes()))) {
                Ok(e) => e,
                Err(e) => {
                    self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
                    error!(error = %e, "encoding an alert for journald failed");
                    return;
                }
            };
            match journal.write(entry) {
                Delivery::Written => {}
                Delivery::Queued => {
                    self.stats
                        .journal_queued
                        .store(journal.queued() as u64, Ordering::Relaxed);
                }
                Delivery::Dropped => {
                    self.stats
                        .journal_dropped
                        .store(journal.dropped(), Ordering::Relaxed);
                    warn!(
                        dropped = journal.dropped(),
                        "journald unreachable and its queue is full: alert dropped (counted)"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ContainerEntry;
    use rampart_protos::agent::{Action, Event, EventType, Severity, Workload};

    fn event(path: &str) -> ReportedEvent {
        ReportedEvent {
            event: Event {
                event_type: EventType::FileAccess as i32,
                file_path: path.into(),
                policy_name: "DisallowEtcAccessForNginx".into(),
                rule_id: "files[0]".into(),
                action: Action::Blocked as i32,
                severity: Severity::High as i32,
                message: format!(
                    "File access to {path} by nginx container is prohibited by policy."
                ),
                container_id: "c1".into(),
                ..Default::default()
            },
            workload: Some(Arc::new(ContainerEntry {
                workload: Workload {
                    namespace: "default".into(),
                    pod_name: "p".into(),
                    container_name: "nginx".into(),
                    container_id: "c1".into(),
                    ..Default::default()
                },
                cgroup_id: 0,
                cgroup_path: String::new(),
                pid: 0,
                bound_at: std::time::SystemTime::now(),
            })),
        }
    }

    #[test]
    fn repeats_are_counted_then_summarised_and_the_rate_limit_counts_what_it_holds_back() {
        let out =
            std::env::temp_dir().join(format!("rampartd-pipeline-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut p = Pipeline::new(
            PipelineConfig {
                node_name: "n".into(),
                dedup_window: Duration::from_secs(10),
                rate: 1.0,
                burst: 2,
                journal: None,
                journal_queue: 0,
            },
            Some(&out),
        )
        .unwrap();
        let t0 = Instant::now();
        assert!(p.handle(&event("/etc/passwd"), t0).is_some());
        for _ in 0..4 {
            assert!(p.handle(&event("/etc/passwd"), t0).is_none());
        }
        assert!(p.handle(&event("/etc/shadow"), t0).is_some());
        // The burst of 2 is spent: a third object is held back, and counted.
        assert!(p.handle(&event("/etc/group"), t0).is_none());
        let s = p.stats();
        assert_eq!(s.deduplicated.load(Ordering::Relaxed), 4);
        assert_eq!(s.rate_limited.load(Ordering::Relaxed), 1);
        p.tick(t0 + Duration::from_secs(11));
        let lines: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[2].contains("(repeated 4 more times in 11s)"),
            "{}",
            lines[2]
        );
        assert!(lines[2].contains(r#""filePath":"/etc/passwd""#));
        std::fs::remove_file(&out).unwrap();
    }
}
