//! Running a command in a container (ExecSync): the attacker's move in the demo, and the probe
//! tests use to see what a policy lets through.

use std::time::Duration;

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::client::{Cri, long_request};
use super::error::CriError;

/// What a command in a container did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Cri {
    /// Runs `cmd` in the container and returns its exit code and output. `timeout` bounds the
    /// command (containerd kills it and the call fails); zero means no bound.
    ///
    /// A command that cannot be started at all (no such binary) is reported by containerd as an
    /// error, not an exit code; that comes back as `CriError::Rpc`.
    #[tracing::instrument(skip(self, cmd), fields(cmd = ?cmd.iter().map(AsRef::as_ref).collect::<Vec<&str>>()))]
    pub async fn exec_sync<S: AsRef<str>>(
        &self,
        container_id: &str,
        cmd: &[S],
        timeout: Duration,
    ) -> Result<ExecOutput, CriError> {
        if cmd.is_empty() {
            return Err(CriError::invalid("exec command", "empty"));
        }
        if cmd.iter().any(|a| a.as_ref().contains('\0')) {
            return Err(CriError::invalid("exec command", "contains a NUL byte"));
        }
        // CRI counts whole seconds: round up so a 500ms bound is not "no bound".
        let secs = if timeout.is_zero() {
            0
        } else {
            i64::try_from(timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0))
                .unwrap_or(i64::MAX)
        };
        let req = cri::ExecSyncRequest {
            container_id: container_id.into(),
            cmd: cmd.iter().map(|a| a.as_ref().to_owned()).collect(),
            timeout: secs,
        };
        // The gRPC deadline must outlast the command's own, so containerd's timeout (with its
        // clearer message) fires first. Without a bound, allow a day rather than forever.
        let extra = if timeout.is_zero() {
            Duration::from_secs(24 * 3600)
        } else {
            timeout
        };
        let resp = self
            .runtime
            .clone()
            .exec_sync(long_request(req, extra))
            .await
            .map_err(|s| {
                let what = format!("{:?} in container {container_id}", first(cmd));
                if s.code() == tonic::Code::DeadlineExceeded && !timeout.is_zero() {
                    // containerd killed the command at our bound: a timeout, not a sick node.
                    CriError::Timeout {
                        what: format!("{what} to finish (it was killed)"),
                        after: timeout,
                    }
                } else {
                    CriError::rpc("exec", what, s)
                }
            })?
            .into_inner();
        tracing::debug!(exit_code = resp.exit_code, "exec done");
        Ok(ExecOutput {
            exit_code: resp.exit_code,
            stdout: resp.stdout,
            stderr: resp.stderr,
        })
    }
}

fn first<S: AsRef<str>>(cmd: &[S]) -> &str {
    cmd.first().map_or("", AsRef::as_ref)
}
