//! The text timeline of a [`Trace`]: one row an event, one column a task.

use std::fmt;

use super::{Ending, Trace, TraceEvent, TraceEventKind};

/// The narrowest a task's column is.
const MIN_COLUMN: usize = 9;

impl Trace {
    /// The trace as a text timeline: a row for each event, with its loop
    /// time and step, a column for each task, and what the event says in
    /// words at the end of the row. The same text as `Display`.
    ///
    /// ```text
    ///     time   step | Task-1    | a         | b         |
    ///   0.000s      0 | spawn     |           |           |
    ///   0.000s      0 | run       |           |           |
    ///   0.000s      1 |           | spawn     |           | by Task-1
    /// ```
    pub fn timeline(&self) -> String {
        self.to_string()
    }

    /// The timeline of at most `rows` events: the first and the last of a
    /// longer trace, with a line saying how many were left out between.
    pub fn timeline_abridged(&self, rows: usize) -> String {
        if self.events.len() <= rows {
            return self.to_string();
        }
        let head = rows - rows / 4;
        let tail = rows / 4;
        let mut out = String::new();
        self.write_rows(&mut out, &self.events[..head]).ok();
        let left_out = self.events.len() - head - tail;
        out.push_str(&format!("  ... {left_out} events left out ...\n"));
        self.write_rows(&mut out, &self.events[self.events.len() - tail..]).ok();
        out
    }

    fn cell(&self, event: &TraceEvent) -> (&'static str, Option<String>) {
        let label = |i: usize| self.tasks.get(i).map_or("?", String::as_str);
        match &event.kind {
            TraceEventKind::Spawn { parent } => {
                ("spawn", parent.map(|p| format!("created by {}", label(p))))
            }
            TraceEventKind::Resume => ("run", None),
            TraceEventKind::Suspend { on } if on == "yield" => ("yield", None),
            TraceEventKind::Suspend { on } => ("wait", Some(format!("waits on {on}"))),
            TraceEventKind::Wake => ("wake", None),
            TraceEventKind::Cancel => ("cancel", Some("cancellation requested".to_owned())),
            TraceEventKind::Complete { ending: Ending::Returned } => ("done", None),
            TraceEventKind::Complete { ending: Ending::Cancelled } => ("cancelled", None),
            TraceEventKind::Complete { ending: Ending::Failed(message) } => {
                ("failed", Some(message.clone()))
            }
        }
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.events.is_empty() {
            return writeln!(f, "(no events recorded)");
        }
        self.write_rows(f, &self.events)
    }
}

impl Trace {
    /// Writes the header row, then a row for each of `events`.
    fn write_rows(&self, f: &mut impl fmt::Write, events: &[TraceEvent]) -> fmt::Result {
        let widths: Vec<usize> =
            self.tasks.iter().map(|t| t.chars().count().max(MIN_COLUMN)).collect();
        write!(f, "{:>8} {:>6} |", "time", "step")?;
        for (task, width) in self.tasks.iter().zip(&widths) {
            write!(f, " {task:<width$} |")?;
        }
        writeln!(f)?;
        for event in events {
            let time = event.time.as_secs_f64();
            write!(f, "{time:>7.3}s {:>6} |", event.step)?;
            let (word, note) = self.cell(event);
            for (i, width) in widths.iter().enumerate() {
                let text = if i == event.task { word } else { "" };
                write!(f, " {text:<width$} |")?;
            }
            if let Some(note) = note {
                write!(f, " {note}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
