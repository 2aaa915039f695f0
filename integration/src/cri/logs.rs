//! Container logs as containerd writes them: the CRI log format, one record a line,
//! `<RFC 3339 timestamp> <stdout|stderr> <F|P> <text>`, where `P` marks a partial line that the
//! next record continues.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::client::Cri;
use super::error::CriError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// One record of a container log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// As written by containerd (RFC 3339 with nanoseconds); kept as text because tests only
    /// compare and print it.
    pub timestamp: String,
    pub stream: Stream,
    /// `P`: the line goes on in the next record of the same stream.
    pub partial: bool,
    pub text: String,
}

impl LogLine {
    /// Parses one record; `None` for a line that is not in the CRI format.
    pub fn parse(line: &str) -> Option<LogLine> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let (timestamp, rest) = line.split_once(' ')?;
        let (stream, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let stream = match stream {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => return None,
        };
        // An empty line may come without the space after the tag.
        let (tags, text) = rest.split_once(' ').unwrap_or((rest, ""));
        // The tag field is ':'-separated for forward compatibility; the first is P or F.
        let partial = match tags.split(':').next() {
            Some("P") => true,
            Some("F") => false,
            _ => return None,
        };
        if timestamp.is_empty() || !timestamp.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        Some(LogLine {
            timestamp: timestamp.to_owned(),
            stream,
            partial,
            text: text.to_owned(),
        })
    }
}

/// Parses a whole log file's content, skipping lines that are not CRI records.
pub fn parse_log(content: &str) -> Vec<LogLine> {
    content.lines().filter_map(LogLine::parse).collect()
}

/// Joins partial records back into the lines the program wrote, per stream, in order of the
/// line's first record.
pub fn join_partials(lines: &[LogLine]) -> Vec<LogLine> {
    let mut out: Vec<LogLine> = Vec::new();
    // Index in `out` of the line each stream is still building.
    let mut open: [Option<usize>; 2] = [None, None];
    for line in lines {
        let slot = match line.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        match open[slot] {
            Some(i) => {
                out[i].text.push_str(&line.text);
                out[i].partial = line.partial;
            }
            None => out.push(line.clone()),
        }
        open[slot] = if line.partial {
            Some(open[slot].unwrap_or(out.len() - 1))
        } else {
            None
        };
    }
    out
}

/// The program's output, both streams interleaved as written, as text with newlines.
pub fn log_text(lines: &[LogLine]) -> String {
    let mut text = String::new();
    for line in join_partials(lines) {
        text.push_str(&line.text);
        if !line.partial {
            text.push('\n');
        }
    }
    text
}

/// Reads and parses a container log file. A missing file is an empty log: containerd creates it
/// only once the container starts.
pub fn read_log(path: &Path) -> Result<Vec<LogLine>, CriError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_log(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CriError::Io {
            action: "reading container log",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The last `n` joined lines' text, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> Vec<String> {
    let lines = join_partials(&read_log(path).unwrap_or_default());
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| l.text.clone()).collect()
}

impl Cri {
    /// The container's log file: containerd reports `log_directory` joined with the log path
    /// the container was created with.
    pub async fn container_log_path(&self, container_id: &str) -> Result<PathBuf, CriError> {
        let status = self.container_status(container_id).await?;
        if status.log_path.as_os_str().is_empty() {
            return Err(CriError::invalid(
                "container log path",
                format!("container {container_id} was created without one"),
            ));
        }
        Ok(status.log_path)
    }

    /// The container's log records so far.
    pub async fn container_logs(&self, container_id: &str) -> Result<Vec<LogLine>, CriError> {
        read_log(&self.container_log_path(container_id).await?)
    }

    /// The container's output so far as text (partial records joined, streams interleaved).
    pub async fn container_log_text(&self, container_id: &str) -> Result<String, CriError> {
        Ok(log_text(&self.container_logs(container_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_records() {
        let l = LogLine::parse("2025-01-02T03:04:05.123456789Z stdout F hello world\n").unwrap();
        assert_eq!(l.timestamp, "2025-01-02T03:04:05.123456789Z");
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.text, "hello world");

        let l = LogLine::parse("2025-01-02T03:04:05Z stderr P  two  spaces").unwrap();
        assert_eq!(l.stream, Stream::Stderr);
        assert!(l.partial);
        assert_eq!(l.text, " two  spaces");
    }

    #[test]
    fn empty_lines_with_and_without_trailing_space() {
        assert_eq!(
            LogLine::parse("2025-01-02T03:04:05Z stdout F ")
                .unwrap()
                .text,
            ""
        );
        assert_eq!(
            LogLine::parse("2025-01-02T03:04:05Z stdout F")
                .unwrap()
                .text,
            ""
        );
    }

    #[test]
    fn tags_may_carry_more_fields() {
        assert!(
            LogLine::parse("2025-01-02T03:04:05Z stdout P:x text")
                .unwrap()
                .partial
        );
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        for bad in [
            "",
            "garbage",
            "2025 stdin F x",
            "2025 stdout X x",
            "stdout F x",
        ] {
            assert!(LogLine::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn partials_join_per_stream() {
        let content = "\
1 stdout P hel
2 stderr F err line
3 stdout P lo
4 stdout F  world
5 stdout F next
";
        let lines = parse_log(content);
        assert_eq!(lines.len(), 5);
        let joined = join_partials(&lines);
        let texts: Vec<_> = joined.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["hello world", "err line", "next"]);
        assert_eq!(joined[0].timestamp, "1");
        assert_eq!(log_text(&lines), "hello world\nerr line\nnext\n");
    }

    #[test]
    fn missing_file_is_empty_log() {
        assert!(
            read_log(Path::new("/nonexistent/rampart/0.log"))
                .unwrap()
                .is_empty()
        );
    }
}
