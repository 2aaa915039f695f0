//! The rampart policy language: model, parse (errors with `file:line:column`), compile to
//! matchers, decide, and the alert record. A pure library: the only I/O is [`load_file`] and
//! [`load_dir`], which read policy files.
//!
//! ```
//! use rampart_policy::{Access, Operation, Snapshot, Verdict, Workload, parse_str};
//!
//! let yaml = r#"
//! apiVersion: rampart.dev/v1alpha1
//! kind: RuntimePolicy
//! metadata: {name: NoShadow}
//! spec:
//!   files:
//!     - {paths: ["/etc/shadow"], action: block}
//! "#;
//! let snapshot = Snapshot::new(parse_str("example.yaml", yaml).unwrap()).unwrap();
//! let view = snapshot.for_workload(&Workload::default());
//! let op = Operation::FileAccess { path: "/etc/./shadow", access: Access::Read, process: "/bin/cat" };
//! assert_eq!(view.decide(&op).verdict, Verdict::Block);
//! ```

mod alert;
mod cidr;
mod compile;
mod decide;
mod error;
mod glob;
mod message;
pub mod model;
mod parse;
mod paths;
mod selector;
mod syscalls;
mod users;

pub use alert::{Alert, AlertAction, EventType, ProcessRef, Timestamp};
pub use compile::{API_VERSION, CompiledPolicy, KIND, RuleKind, Verdict};
pub use decide::{Decision, IngressCell, IngressTable, Operation, Snapshot, WorkloadView};
pub use error::{Diagnostic, Error};
pub use message::VARIABLES as MESSAGE_VARIABLES;
pub use model::{Access, Direction, Mode, Protocol, Response, Severity};
pub use parse::{MAX_FILE_BYTES, Policy, decode, load_dir, load_file, parse_str};
pub use paths::normalize as normalize_path;
pub use selector::Workload;
pub use syscalls::{HARDENABLE as HARDENABLE_SYSCALLS, SeccompPlan};
pub use users::User;
