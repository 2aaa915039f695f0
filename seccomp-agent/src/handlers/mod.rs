//! One handler per kind of notified call: each decides its call on the real object and says how
//! the task is answered. Handlers know nothing of the dispatcher; they return an `Outcome`.

pub mod chmod;
pub mod connect;
pub mod exec;
pub mod file_call;
pub mod hardening;
pub mod new_name;
pub mod open;
pub mod remove;
pub mod truncate;
