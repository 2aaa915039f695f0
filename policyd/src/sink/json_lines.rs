//! Alerts as JSON lines, to a file (appended) or to stdout: for log shippers that tail files, and
//! for a terminal.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub enum JsonLines {
    Stdout,
    File { path: PathBuf, file: File },
}

impl JsonLines {
    /// `-` is stdout.
    pub fn open(path: &Path) -> io::Result<Self> {
        if path == Path::new("-") {
            return Ok(JsonLines::Stdout);
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLines::File {
            path: path.to_owned(),
            file,
        })
    }

    pub fn write(&mut self, json: &str) -> io::Result<()> {
        // One write per line, so concurrent readers never see half a record.
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        match self {
            JsonLines::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
            JsonLines::File { file, .. } => file.write_all(line.as_bytes()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            JsonLines::Stdout => "stdout".into(),
            JsonLines::File { path, .. } => path.display().to_string(),
        }
    }
}
