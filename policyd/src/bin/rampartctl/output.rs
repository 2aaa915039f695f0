//! Terminal output: aligned tables, colour only for a terminal, JSON for machines.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use rampart_policy::AlertAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// For people: aligned columns, colour on a terminal.
    #[default]
    Table,
    /// For machines: JSON (one object, or one per line for streams).
    Json,
}

/// Whether to colour stdout: a terminal, and NO_COLOR (https://no-color.org) unset or empty.
pub fn colour_enabled() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Red,
    Yellow,
    Green,
    Magenta,
    Bold,
    Dim,
}

#[derive(Debug, Clone, Copy)]
pub struct Painter {
    enabled: bool,
}

impl Painter {
    pub fn new() -> Self {
        Painter {
            enabled: colour_enabled(),
        }
    }

    pub fn paint(&self, colour: Colour, text: &str) -> String {
        if !self.enabled || text.is_empty() {
            return text.to_owned();
        }
        let code = match colour {
            Colour::Red => "31",
            Colour::Yellow => "33",
            Colour::Green => "32",
            Colour::Magenta => "35",
            Colour::Bold => "1",
            Colour::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// An action or verdict, in its colour.
    pub fn action(&self, action: &str) -> String {
        match action_colour(action) {
            Some(colour) => self.paint(colour, action),
            None => action.to_owned(),
        }
    }
}

/// Columns padded to the widest cell. Cells may be coloured after layout: widths are measured
/// on the plain text so escape codes do not skew them.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

pub struct Cell {
    text: String,
    colour: Option<Colour>,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, colour: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::from(text.to_owned())
    }
}

impl Cell {
    pub fn coloured(text: impl Into<String>, colour: Option<Colour>) -> Self {
        Cell {
            text: text.into(),
            colour,
        }
    }
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<C: Into<Cell>>(&mut self, cells: impl IntoIterator<Item = C>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, painter: &Painter) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.text.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: Vec<(String, usize)>| {
            let last = cells.len().saturating_sub(1);
            for (i, (text, plain_len)) in cells.into_iter().enumerate() {
                out.push_str(&text);
                if i < last {
                    out.push_str(&" ".repeat(widths[i] - plain_len + 2));
                }
            }
            out.push('\n');
        };
        line(
            &mut out,
            self.headers
                .iter()
                .map(|h| (painter.paint(Colour::Bold, h), h.chars().count()))
                .collect(),
        );
        for row in &self.rows {
            line(
                &mut out,
                (0..n)
                    .map(|i| match row.get(i) {
                        Some(c) => {
                            let text = match c.colour {
                                Some(col) => painter.paint(col, &c.text),
                                None => c.text.clone(),
                            };
                            (text, c.text.chars().count())
                        }
                        None => (String::new(), 0),
                    })
                    .collect(),
            );
        }
        out
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `-` for empty cells, so columns stay readable.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// RFC 3339 UTC for milliseconds since the Unix epoch; `-` for 0 (unknown).
pub fn time_ms(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000;
    rampart_policy::Timestamp::from_unix(secs, nanos)
        .map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// The colour an action (`Blocked`, …, as records name them) or `explain`'s `Allowed` is shown in.
pub fn action_colour(action: &str) -> Option<Colour> {
    match AlertAction::from_name(action) {
        Some(a) if a.stopped() => Some(Colour::Red),
        Some(_) => Some(Colour::Yellow),
        None => (action == "Allowed").then_some(Colour::Green),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_plain_width() {
        let mut t = Table::new(["A", "LONGER"]);
        t.row(["xxxx", "y"]);
        t.row([Cell::coloured("z", Some(Colour::Red)), Cell::from("w")]);
        let p = Painter { enabled: true };
        let plain: String = t
            .render(&p)
            .replace("\x1b[31m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[0m", "");
        assert_eq!(plain, "A     LONGER\nxxxx  y\nz     w\n");
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(time_ms(0), "-");
        assert_eq!(time_ms(1_698_402_600_000), "2023-10-27T10:30:00Z");
    }
}
