//! Schedules: the choices of a schedule-driven run, and their text form.

use std::fmt;
use std::str::FromStr;

/// The choices a schedule-driven run makes wherever the loop could run more
/// than one thing next, in order. Choice 0 is what asyncio's FIFO order
/// picks; past the end every choice is 0, so the empty schedule is asyncio's
/// own order.
///
/// It prints as a short string that parses back: the choices joined by
/// dots, a run of three or more zeros written `0*<count>`, trailing zeros
/// left out, and `fifo` for the empty schedule.
///
/// ```
/// use gencoro::testing::Schedule;
///
/// let schedule: Schedule = "0*4.1.0.2".parse().unwrap();
/// assert_eq!(schedule.choices(), [0, 0, 0, 0, 1, 0, 2]);
/// assert_eq!(schedule.deviations(), 2);
/// assert_eq!(schedule.to_string(), "0*4.1.0.2");
/// assert_eq!(Schedule::fifo().to_string(), "fifo");
/// assert_eq!(Schedule::new(vec![0, 3, 0, 0]).to_string(), "0.3");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Schedule {
    choices: Vec<u32>,
}

impl Schedule {
    /// asyncio's order: no deviation at all.
    pub fn fifo() -> Schedule {
        Schedule::default()
    }

    /// A schedule of these choices (trailing zeros change nothing and are
    /// dropped).
    pub fn new(choices: Vec<u32>) -> Schedule {
        let mut choices = choices;
        while choices.last() == Some(&0) {
            choices.pop();
        }
        Schedule { choices }
    }

    /// The choices, in order, with no trailing zeros.
    pub fn choices(&self) -> &[u32] {
        &self.choices
    }

    /// How many choices differ from FIFO's.
    pub fn deviations(&self) -> usize {
        self.choices.iter().filter(|&&c| c != 0).count()
    }

    /// Whether this is asyncio's FIFO order.
    pub fn is_fifo(&self) -> bool {
        self.choices.is_empty()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.choices.is_empty() {
            return f.write_str("fifo");
        }
        let mut first = true;
        let mut i = 0;
        while i < self.choices.len() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            let zeros = self.choices[i..].iter().take_while(|&&c| c == 0).count();
            if zeros >= 3 {
                write!(f, "0*{zeros}")?;
                i += zeros;
            } else {
                write!(f, "{}", self.choices[i])?;
                i += 1;
            }
        }
        Ok(())
    }
}

/// A string that is not a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseScheduleError {
    part: String,
}

impl fmt::Display for ParseScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a schedule: '{}' is neither a choice (a number) nor a run of zeros (0*<count>)",
            self.part
        )
    }
}

impl std::error::Error for ParseScheduleError {}

/// The most choices a schedule string may spell out, runs of zeros
/// included.
const MAX_CHOICES: usize = 1 << 24;

impl FromStr for Schedule {
    type Err = ParseScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ParseScheduleError> {
        let s = s.trim();
        if s.is_empty() || s == "fifo" {
            return Ok(Schedule::fifo());
        }
        let mut choices = Vec::new();
        for part in s.split('.') {
            let error = || ParseScheduleError { part: part.to_owned() };
            if let Some(count) = part.strip_prefix("0*") {
                let count: usize = count.parse().map_err(|_| error())?;
                if count > MAX_CHOICES - choices.len() {
                    return Err(error());
                }
                choices.extend(std::iter::repeat_n(0, count));
            } else {
                if choices.len() >= MAX_CHOICES {
                    return Err(error());
                }
                choices.push(part.parse().map_err(|_| error())?);
            }
        }
        Ok(Schedule::new(choices))
    }
}
