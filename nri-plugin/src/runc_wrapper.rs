//! rampart-runc: an OCI runtime wrapper for runtimes whose NRI cannot adjust seccomp (NRI < 0.10,
//! containerd 1.7–2.1). rampart-nri puts the additions in an annotation at CreateContainer; before
//! runc reads the bundle, this merges them into config.json's `linux.seccomp`, then execs runc with
//! the same arguments (the pattern of nvidia-container-runtime).
//!
//! Fails closed: a container whose annotation asks for protection that can't be applied is not
//! created, and the error names why (containerd shows runc's stderr in the CreateContainer error).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::seccomp_merge::{self, Additions, MergeError};

/// The annotation rampart-nri sets: the JSON of [`Additions`].
pub const SECCOMP_ANNOTATION: &str = "rampart.dev/seccomp";

#[derive(Debug, thiserror::Error)]
pub enum WrapperError {
    #[error("rampart-runc: cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("rampart-runc: {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "rampart-runc: annotation {SECCOMP_ANNOTATION} is not valid ({source}); it is written by \
         rampart-nri: are both the same version?"
    )]
    Annotation { source: serde_json::Error },
    #[error("rampart-runc: cannot apply rampart's seccomp rules: {0}")]
    Merge(#[from] MergeError),
    #[error("rampart-runc: cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "rampart-runc: no runc found (looked in {looked:?}); set RAMPART_RUNC to the real runc"
    )]
    NoRunc { looked: Vec<PathBuf> },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No rampart annotation: the bundle is not touched.
    Untouched,
    /// The rules were merged into config.json.
    Merged,
}

/// Merges rampart's seccomp additions into `bundle/config.json` if its annotation asks for them.
pub fn prepare_bundle(bundle: &Path) -> Result<Outcome, WrapperError> {
    let path = bundle.join("config.json");
    let text = fs::read(&path).map_err(|source| WrapperError::Read {
        path: path.clone(),
        source,
    })?;
    // Most containers carry no rampart annotation: don't parse their config at all. containerd
    // writes config.json with Go's encoder, which writes this key literally; an escaped '/' is
    // valid JSON too, so both forms count.
    if !contains(&text, SECCOMP_ANNOTATION.as_bytes())
        && !contains(&text, SECCOMP_ANNOTATION.replace('/', "\\/").as_bytes())
    {
        return Ok(Outcome::Untouched);
    }
    let mut spec: Value = serde_json::from_slice(&text).map_err(|source| WrapperError::Parse {
        path: path.clone(),
        source,
    })?;
    let Some(annotation) = spec
        .pointer(&format!(
            "/annotations/{}",
            SECCOMP_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
    else {
        return Ok(Outcome::Untouched);
    };
    let additions: Additions =
        serde_json::from_str(annotation).map_err(|source| WrapperError::Annotation { source })?;
    let merged = seccomp_merge::merge(spec.pointer("/linux/seccomp"), &additions)?;
    let linux = spec
        .as_object_mut()
        .ok_or_else(|| MergeError::Malformed("config.json is not an object".into()))?
        .entry("linux")
        .or_insert_with(|| Value::Object(Default::default()));
    let Value::Object(linux) = linux else {
        return Err(MergeError::Malformed("linux is not an object".into()).into());
    };
    linux.insert("seccomp".into(), merged);
    write_atomically(
        &path,
        &serde_json::to_vec(&spec).expect("a JSON value serialises"),
    )?;
    Ok(Outcome::Merged)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// runc must never see a half-written config.json: write beside it, then rename over it. No
/// fsync: the bundle lives in containerd's state directory and means nothing after a crash (the
/// shim recreates it), while an fsync of a disk-backed state dir cost milliseconds per container.
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), WrapperError> {
    let err = |source| WrapperError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("json.rampart-tmp");
    let mode = fs::metadata(path).map_err(err)?.permissions().mode();
    let mut f = fs::File::create(&tmp).map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)
}

/// The real runc: `RAMPART_RUNC`, else the first runc on the usual paths that is not this wrapper.
pub fn find_runc(env: Option<PathBuf>, me: Option<PathBuf>) -> Result<PathBuf, WrapperError> {
    if let Some(p) = env {
        return Ok(p);
    }
    let looked: Vec<PathBuf> = [
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/sbin/runc",
        "/bin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let me = me.and_then(|m| fs::canonicalize(m).ok());
    looked
        .iter()
        .find(|p| p.is_file() && fs::canonicalize(p).ok().as_ref() != me.as_ref())
        .cloned()
        .ok_or(WrapperError::NoRunc { looked })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle_with(spec: Value) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rampart-runc-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
        dir
    }

    fn rand_suffix() -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }

    fn additions() -> String {
        serde_json::to_string(&Additions {
            notify: vec!["openat".into()],
            deny: vec![],
            listener_path: "/run/rampart/seccomp.sock".into(),
            listener_metadata: "m".into(),
            reads_in_kernel: true,
            deny_new_namespaces: true,
            deny_raw_sockets: true,
            exec_by_guard: false,
        })
        .unwrap()
    }

    #[test]
    fn merges_when_annotated_and_keeps_the_rest_of_the_spec() {
        let dir = bundle_with(json!({
            "ociVersion": "1.1.0",
            "process": {"args": ["nginx"]},
            "annotations": {SECCOMP_ANNOTATION: additions(), "other": "x"},
            "linux": {"namespaces": [{"type": "pid"}],
                      "seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                                  "syscalls": [{"names": ["openat", "read"], "action": "SCMP_ACT_ALLOW"}]}}
        }));
        assert_eq!(prepare_bundle(&dir).unwrap(), Outcome::Merged);
        let spec: Value =
            serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(spec["process"]["args"][0], "nginx");
        assert_eq!(spec["linux"]["namespaces"][0]["type"], "pid");
        assert_eq!(
            spec["linux"]["seccomp"]["listenerPath"],
            "/run/rampart/seccomp.sock"
        );
        let rules = spec["linux"]["seccomp"]["syscalls"].as_array().unwrap();
        assert!(
            rules
                .iter()
                .any(|r| r["action"] == "SCMP_ACT_NOTIFY" && r["names"][0] == "openat")
        );
        assert!(!dir.join("config.json.rampart-tmp").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn leaves_unannotated_bundles_byte_for_byte() {
        let dir = bundle_with(json!({"ociVersion": "1.1.0", "annotations": {"a": "b"}}));
        let before = fs::read(dir.join("config.json")).unwrap();
        assert_eq!(prepare_bundle(&dir).unwrap(), Outcome::Untouched);
        assert_eq!(fs::read(dir.join("config.json")).unwrap(), before);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_escaped_slash_in_the_key_is_still_found() {
        let dir = bundle_with(json!({"ociVersion": "1.1.0"}));
        let text = format!(
            r#"{{"ociVersion":"1.1.0","annotations":{{"rampart.dev\/seccomp":{}}}}}"#,
            serde_json::to_string(&additions()).unwrap()
        );
        fs::write(dir.join("config.json"), text).unwrap();
        assert_eq!(prepare_bundle(&dir).unwrap(), Outcome::Merged);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_annotation_fails_closed() {
        let dir = bundle_with(json!({"annotations": {SECCOMP_ANNOTATION: "{not json"}}));
        let err = prepare_bundle(&dir).unwrap_err();
        assert!(matches!(err, WrapperError::Annotation { .. }), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_bundle_is_a_clear_error() {
        let err = prepare_bundle(Path::new("/nonexistent-bundle")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-bundle/config.json"),
            "{err}"
        );
    }

    #[test]
    fn finds_a_runc_that_is_not_itself() {
        assert_eq!(
            find_runc(Some("/opt/runc".into()), None).unwrap(),
            PathBuf::from("/opt/runc")
        );
        if Path::new("/usr/sbin/runc").exists() {
            let found = find_runc(None, Some("/usr/local/bin/rampart-runc".into())).unwrap();
            assert!(found.ends_with("runc"));
            // Pretending to be /usr/sbin/runc, it must not pick itself.
            let other = find_runc(None, Some("/usr/sbin/runc".into()));
            assert_ne!(other.ok(), Some(PathBuf::from("/usr/sbin/runc")));
        }
    }
}
