//! Export of a [`Trace`] to the Chrome trace-event format, which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` draw.

use serde_json::{Value, json};

use super::{Ending, Trace, TraceEventKind};

impl Trace {
    /// The trace in the Chrome trace-event JSON format (the "JSON Object
    /// Format": `{"traceEvents": [...]}`), each task a thread of process 1
    /// named after it.
    ///
    /// * Each stretch a task runs (from its resume to its suspension or its
    ///   end) is a complete event (`"ph": "X"`) named after how it ended
    ///   (`yield`, `wait`, `done`, ...).
    /// * Spawns, wake-ups and cancellation requests are instant events
    ///   (`"ph": "i"`).
    /// * Timestamps count loop steps, one step a microsecond: virtual time
    ///   stands still while the tasks of one iteration run, so it cannot
    ///   order them. Each event carries its virtual time, in seconds, in
    ///   `args.loop_time`.
    ///
    /// ```
    /// use gencoro::{runtime, testing};
    ///
    /// let run = testing::replay(&testing::Schedule::fifo(), || {
    ///     runtime::sleep(std::time::Duration::from_secs(1)).map_err(|e| e.to_string())
    /// });
    /// let json: serde_json::Value = serde_json::from_str(&run.trace().to_chrome_json()).unwrap();
    /// assert!(json["traceEvents"].as_array().unwrap().len() > 2);
    /// ```
    pub fn to_chrome_json(&self) -> String {
        let mut events: Vec<Value> = Vec::new();
        for (tid, name) in self.tasks.iter().enumerate() {
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": 1, "tid": tid,
                "ts": 0, "args": { "name": name },
            }));
        }
        // Where each task's current stretch began: (step, loop time).
        let mut running: Vec<Option<(u64, f64)>> = vec![None; self.tasks.len()];
        for event in &self.events {
            let tid = event.task;
            let time = event.time.as_secs_f64();
            let instant = |name: &str, args: Value| {
                json!({
                    "name": name, "ph": "i", "s": "t", "pid": 1, "tid": tid,
                    "ts": event.step, "args": args,
                })
            };
            let end = |running: &mut Vec<Option<(u64, f64)>>, name: &str, detail: Value| {
                let (start, start_time) = running[tid].take().unwrap_or((event.step, time));
                json!({
                    "name": name, "ph": "X", "pid": 1, "tid": tid,
                    "ts": start, "dur": (event.step - start).max(1),
                    "args": { "loop_time": start_time, "detail": detail },
                })
            };
            let record = match &event.kind {
                TraceEventKind::Spawn { parent } => instant(
                    "spawn",
                    json!({ "loop_time": time, "parent": parent.map(|p| &self.tasks[p]) }),
                ),
                TraceEventKind::Resume => {
                    running[tid] = Some((event.step, time));
                    continue;
                }
                TraceEventKind::Suspend { on } if on == "yield" => {
                    end(&mut running, "yield", Value::Null)
                }
                TraceEventKind::Suspend { on } => end(&mut running, "wait", json!(on)),
                TraceEventKind::Complete { ending } => match ending {
                    Ending::Returned => end(&mut running, "done", Value::Null),
                    Ending::Cancelled => end(&mut running, "cancelled", Value::Null),
                    Ending::Failed(message) => end(&mut running, "failed", json!(message)),
                },
                TraceEventKind::Wake => instant("wake", json!({ "loop_time": time })),
                TraceEventKind::Cancel => instant("cancel", json!({ "loop_time": time })),
            };
            events.push(record);
        }
        json!({ "traceEvents": events, "displayTimeUnit": "ms" }).to_string()
    }

    /// Writes [`to_chrome_json`](Self::to_chrome_json) to `path`.
    ///
    /// # Errors
    ///
    /// The file could not be written.
    pub fn write_chrome_json(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, self.to_chrome_json())
    }
}
