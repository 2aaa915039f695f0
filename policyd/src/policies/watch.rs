//! Watching the policy directory with inotify. Editors save in different ways (write in place,
//! write a temporary file and rename it over, delete and recreate), so every way a name can come
//! to hold new content is watched, and the changed names are handed to the store after a short
//! quiet period, so a burst of events reloads each file once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use inotify::{Inotify, WatchMask};
use tokio::sync::mpsc;

/// How long to wait after the last event before reloading.
const QUIET: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error)]
#[error("cannot watch the policy directory {dir}: {source}")]
pub struct WatchError {
    dir: PathBuf,
    source: std::io::Error,
}

/// Sends batches of changed paths until the receiver is dropped.
pub fn watch(dir: &Path) -> Result<mpsc::Receiver<BTreeSet<PathBuf>>, WatchError> {
    let err = |source| WatchError {
        dir: dir.to_owned(),
        source,
    };
    let inotify = Inotify::init().map_err(err)?;
    inotify
        .watches()
        .add(
            dir,
            WatchMask::CLOSE_WRITE
                | WatchMask::MOVED_TO
                | WatchMask::MOVED_FROM
                | WatchMask::DELETE
                | WatchMask::CREATE,
        )
        .map_err(err)?;
    let mut stream = inotify.into_event_stream([0u8; 4096]).map_err(err)?;
    let (tx, rx) = mpsc::channel(16);
    let dir = dir.to_owned();
    tokio::spawn(async move {
        loop {
            let mut changed = BTreeSet::new();
            // Wait for the first event, then gather until things are quiet.
            match stream.next().await {
                Some(Ok(ev)) => {
                    if let Some(name) = ev.name {
                        changed.insert(dir.join(name));
                    }
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, dir = %dir.display(), "reading inotify events failed; policy changes are no longer seen");
                    return;
                }
                None => return,
            }
            while let Ok(Some(Ok(ev))) = tokio::time::timeout(QUIET, stream.next()).await {
                if let Some(name) = ev.name {
                    changed.insert(dir.join(name));
                }
            }
            if tx.send(changed).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
