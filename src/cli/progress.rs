//! What a person sees while runnerform works: a progress display on a terminal while a plan
//! reads GitLab and while apply carries out its steps, one `[k/N]` line per finished step
//! otherwise, and with `-v` one line per GitLab request on stderr.
//!
//! It is driven only by what the engine reports (its [`Observer`] calls and apply's
//! [`Event`]s), so the engine stays free of terminal I/O; `-q` silences all of it.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Ui;
use crate::engine::{Event, Observer};
use crate::remote::Exchange;

pub struct Progress {
    /// A bar (on stderr) while a plan reads GitLab: stderr is a terminal, not `-q`.
    read_bar: bool,
    /// A bar while apply runs: both streams are terminals and stdout is for people.
    bars: bool,
    /// `[k/N]` lines for finished steps (not with `-q` or `--json`).
    lines: bool,
    verbosity: i8,
    current: Mutex<Option<ProgressBar>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("bars", &self.bars)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// `json`: stdout is for a program, so neither bars nor lines are shown there.
    pub fn new(ui: &Ui, json: bool) -> Self {
        use std::io::IsTerminal;
        let people = ui.verbosity >= 0 && !json;
        Progress {
            read_bar: ui.verbosity >= 0 && std::io::stderr().is_terminal(),
            bars: people && std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
            lines: people,
            verbosity: ui.verbosity,
            current: Mutex::new(None),
        }
    }

    fn bar(&self, prefix: &'static str, len: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{pos}/{len}] {elapsed:>4} {wide_msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(prefix);
        // Redrawn while a slow request is waited for, so the elapsed time keeps moving.
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// Runs `f` with the bar (if any) out of the way, so that lines do not tear it.
    fn print(&self, f: impl FnOnce()) {
        let current = self.current.lock().expect("progress lock");
        match current.as_ref() {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// The plan is made: the reading bar goes away.
    pub fn planned(&self) {
        if let Some(bar) = self.current.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }

    /// An apply event: the bar follows the steps; each finished step is a line.
    pub fn event(&self, e: &Event) {
        match e {
            Event::WaitingForLock { config_toml } => {
                if self.verbosity >= 0 {
                    self.print(|| {
                        eprintln!(
                            "Waiting for another runnerform to finish applying to {config_toml}…"
                        )
                    });
                }
            }
            Event::Started {
                total,
                runner,
                step,
                ..
            } => {
                if !self.bars {
                    return;
                }
                // Runners run in parallel: the bar counts finished steps and names the step
                // started last.
                let mut current = self.current.lock().expect("progress lock");
                let bar = current.get_or_insert_with(|| self.bar("Applying", *total as u64));
                bar.set_length(*total as u64);
                bar.set_message(format!("{runner}: {step}"));
            }
            Event::Finished {
                index,
                total,
                runner,
                step,
                detail,
            } => {
                if self.lines {
                    let detail = if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({detail})")
                    };
                    self.print(|| println!("{}", step_line(*index, *total, runner, step, &detail)));
                }
                if let Some(bar) = self.current.lock().expect("progress lock").as_ref() {
                    bar.set_position(*index as u64);
                }
            }
        }
    }

    /// Apply is over: the bar goes away (the lines above it stay).
    pub fn finish(&self) {
        self.planned();
    }
}

/// One finished step, as apply has always printed it.
pub fn step_line(index: usize, total: usize, runner: &str, step: &str, detail: &str) -> String {
    format!("  [{index}/{total}] {runner}: {step}{detail}")
}

impl crate::remote::Observer for Progress {
    fn exchanged(&self, e: &Exchange<'_>) {
        if self.verbosity >= 1 {
            let line = request_line(e, self.verbosity >= 2);
            self.print(|| eprintln!("{line}"));
        }
        if let Some(bar) = self.current.lock().expect("progress lock").as_ref()
            && bar.prefix() == READING
        {
            bar.inc(1);
            if bar.position() > bar.length().unwrap_or(0) {
                bar.set_length(bar.position());
            }
            bar.set_message(format!("{} {}", e.method, e.path));
        }
    }
}

const READING: &str = "Reading GitLab";

impl Observer for Progress {
    fn reading(&self, more: usize) {
        if !self.read_bar {
            return;
        }
        let mut current = self.current.lock().expect("progress lock");
        match current.as_ref() {
            Some(bar) if bar.prefix() == READING => bar.inc_length(more as u64),
            _ => *current = Some(self.bar(READING, more as u64)),
        }
    }
}

/// `-v`: `GitLab: GET /api/v4/runners/12 -> 200 (23 ms)`. `-vv` adds the query and the
/// request body, every token field and token-shaped value masked.
pub fn request_line(e: &Exchange<'_>, detail: bool) -> String {
    let mut target = format!("/api/v4{}", e.path);
    if detail && !e.query.is_empty() {
        let q: Vec<String> = e
            .query
            .iter()
            .map(|(k, v)| {
                if k.contains("token") {
                    format!("{k}=(secret)")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        target.push('?');
        target.push_str(&q.join("&"));
    }
    let millis = e.elapsed.as_millis();
    let result = match (e.status, &e.error) {
        (Some(status), None) => format!("{status}"),
        (Some(status), Some(error)) if detail => format!("{status}: {error}"),
        (Some(status), Some(_)) => format!("{status}"),
        (None, Some(error)) => format!("no answer: {error}"),
        (None, None) => "no answer".to_string(),
    };
    let attempts = match e.attempts {
        Some(n) if n > 1 => format!(", {n} attempts"),
        _ => String::new(),
    };
    let mut line = format!(
        "GitLab: {} {target} -> {result} ({millis} ms{attempts})",
        e.method
    );
    if detail && let Some(body) = e.body {
        line.push_str(&format!("\n  body: {}", masked_body(body)));
    }
    crate::secrets::mask(&line)
}

/// The body with every field named like a token replaced, whatever its value looks like
/// (a legacy token has no prefix to recognise it by).
fn masked_body(body: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let secret = k.contains("token") && !v.is_null();
                        let v = if secret {
                            Value::String("(secret)".into())
                        } else {
                            walk(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(walk).collect()),
            other => other.clone(),
        }
    }
    walk(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange<'a>(
        method: &'a reqwest::Method,
        path: &'a str,
        query: &'a [(&'a str, String)],
        body: Option<&'a serde_json::Value>,
    ) -> Exchange<'a> {
        Exchange {
            method,
            path,
            query,
            body,
            status: Some(200),
            error: None,
            attempts: None,
            elapsed: Duration::from_millis(23),
        }
    }

    #[test]
    fn a_request_line_names_method_path_status_and_time() {
        let get = reqwest::Method::GET;
        let q = [("page", "2".to_string())];
        let e = exchange(&get, "/runners/12", &q, None);
        assert_eq!(
            request_line(&e, false),
            "GitLab: GET /api/v4/runners/12 -> 200 (23 ms)"
        );
        assert_eq!(
            request_line(&e, true),
            "GitLab: GET /api/v4/runners/12?page=2 -> 200 (23 ms)"
        );
    }

    #[test]
    fn tokens_in_bodies_and_queries_are_masked_whatever_they_look_like() {
        let post = reqwest::Method::POST;
        let body = serde_json::json!({"token": "legacy0secret", "system_id": "s_0123456789ab",
            "nested": [{"runner_token": "glrt-abcdefghijklmnop"}], "note": "glpat-abcdefghijk"});
        let q = [("token", "legacy0secret".to_string())];
        let mut e = exchange(&post, "/runners/verify", &q, Some(&body));
        e.status = None;
        e.error = Some("timed out".into());
        e.attempts = Some(5);
        let line = request_line(&e, true);
        assert!(!line.contains("legacy0secret"), "{line}");
        assert!(!line.contains("abcdefghijk"), "{line}");
        assert!(line.contains("s_0123456789ab"), "{line}");
        assert!(
            line.starts_with(
                "GitLab: POST /api/v4/runners/verify?token=(secret) -> no answer: timed out (23 ms, 5 attempts)\n  body: "
            ),
            "{line}"
        );
        // Without -vv neither the body nor the query is shown.
        assert!(!request_line(&e, false).contains("body"));
    }
}
