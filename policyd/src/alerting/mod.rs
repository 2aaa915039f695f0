//! Between a decision and a sink: repeats are counted instead of written again, and each workload
//! has a budget of records per second so one noisy pod can't drown the journal. Nothing is dropped
//! silently: every suppressed record is counted, and the counts are reported.

pub mod dedup;
pub mod ratelimit;
