//! What apply shows while it works: one `[k/N]` line per finished step when stdout is not a
//! terminal, nothing extra with `-q`, a progress display on a terminal, and with `-v` one
//! line per GitLab request (tokens masked).

use std::time::Duration;

use crate::test_online::{FLEET, Host};

/// The lines of `text` that report a finished step.
fn step_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('['))
        .collect()
}

#[test]
fn a_piped_apply_prints_one_numbered_line_per_finished_step() {
    let h = Host::new(FLEET);
    // One runner at a time, so that the order is the plan's.
    let out = h.run(&["apply", "--yes", "--concurrency", "1"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let lines = step_lines(&out.stdout);
    insta::assert_snapshot!(lines.join("\n"), @r"
      [1/20] inst: register (GitLab id 1)
      [2/20] inst: write the entry
      [3/20] inst: record ownership
      [4/20] inst: clear the claim marker (GitLab id 1)
      [5/20] grp-1: register (GitLab id 2)
      [6/20] grp-1: write the entry
      [7/20] grp-1: record ownership
      [8/20] grp-1: clear the claim marker (GitLab id 2)
      [9/20] grp-2: register (GitLab id 3)
      [10/20] grp-2: write the entry
      [11/20] grp-2: record ownership
      [12/20] grp-2: clear the claim marker (GitLab id 3)
      [13/20] proj: register (GitLab id 4)
      [14/20] proj: write the entry
      [15/20] proj: record ownership
      [16/20] proj: clear the claim marker (GitLab id 4)
      [17/20] proj2: register (GitLab id 5)
      [18/20] proj2: write the entry
      [19/20] proj2: record ownership
      [20/20] proj2: clear the claim marker (GitLab id 5)
    ");
    // Piped, nothing draws a progress bar: no carriage returns, no escape codes.
    assert!(!out.combined().contains('\r') && !out.combined().contains('\x1b'));
}

#[test]
fn quiet_apply_prints_no_progress() {
    let h = Host::new(FLEET);
    let out = h.run(&["-q", "apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
    assert_eq!(h.sim.runners().len(), 5);
}

#[test]
fn verbose_logs_each_gitlab_request_with_its_status_and_time() {
    let h = Host::new(FLEET);
    let out = h.run(&["-v", "apply", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    let logged: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("GitLab: "))
        .collect();
    // Every request GitLab saw is one line, in the client's words.
    assert_eq!(logged.len(), h.sim.requests().len(), "{}", out.stderr);
    let re = |l: &str| {
        let rest = l.strip_prefix("GitLab: ").unwrap();
        let (method, rest) = rest.split_once(' ').unwrap();
        let (path, rest) = rest.split_once(" -> ").unwrap();
        let (status, time) = rest.split_once(" (").unwrap();
        assert!(["GET", "POST", "PUT", "DELETE"].contains(&method), "{l}");
        assert!(path.starts_with("/api/v4/") && !path.contains('?'), "{l}");
        assert!(status.parse::<u16>().is_ok(), "{l}");
        assert!(time.ends_with(" ms)"), "{l}");
        format!("{method} {path} {status}")
    };
    let lines: Vec<String> = logged.iter().map(|l| re(l)).collect();
    assert!(
        lines.contains(&"GET /api/v4/personal_access_tokens/self 200".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| *l == "POST /api/v4/user/runners 201")
            .count(),
        5,
        "{lines:?}"
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("GitLab: ")),
        "the log is on stderr"
    );

    // -vv adds the body of each request; a runner token in it is masked.
    let again = h.run(&["-vv", "plan", "--verify-tokens"]);
    assert_eq!(again.code, 0, "{}", again.combined());
    let verify = again
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("GitLab: POST /api/v4/runners/verify"))
        .nth(1)
        .unwrap_or_else(|| panic!("{}", again.stderr));
    assert!(verify.starts_with("  body: "), "{verify}");
    assert!(verify.contains(r#""token":"(secret)""#), "{verify}");
    for name in ["inst", "proj"] {
        let token = h.token_of(name);
        assert!(
            !again.combined().contains(&token[5..]),
            "{name}'s token leaked"
        );
    }
}

#[test]
fn a_failed_request_is_logged_with_its_attempts() {
    let h = Host::new(FLEET);
    h.sim.inject(
        runnerform::sim::Fault::new(
            "/api/v4/personal_access_tokens/self",
            runnerform::sim::FaultKind::Status { status: 503 },
        )
        .times(100),
    );
    // Retried with backoff (about 3 s) before the client gives up.
    let out = h.run(&["-v", "plan"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("GitLab: GET /api/v4/personal_access_tokens/self"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        line.contains("-> no answer: ") && line.contains(" attempts)"),
        "{line}"
    );
}

/// Runs runnerform under a pseudo-terminal (`script` from util-linux), as a person would.
fn on_a_terminal(h: &Host, args: &str) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(script) = script else {
        eprintln!(
            "SKIPPED on_a_terminal: `script` (util-linux) is not installed, so no pseudo-terminal \
             can be made; install bsdutils/util-linux to run it"
        );
        return None;
    };
    let out = std::process::Command::new(script)
        .args([
            "-qec",
            &format!("{} {args}", crate::common::BIN),
            "/dev/null",
        ])
        .current_dir(h.env.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("HOME", h.env.path())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        crate::common::unmasked_token(&text).is_none(),
        "a token on the terminal: {text}"
    );
    Some(text)
}

#[test]
fn on_a_terminal_reading_and_applying_show_done_total_current_runner_and_elapsed() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes", "--target", "inst"]).code, 0);
    // Slow enough that the display is drawn while requests are waited for.
    h.sim.set_latency("*", Duration::from_millis(150));
    let Some(text) = on_a_terminal(&h, "apply --yes") else {
        return;
    };
    let bar = |prefix: &str| {
        text.split(['\r', '\n'])
            .map(|l| l.trim_start_matches("\x1b[2K"))
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let reading = bar("Reading GitLab [");
    assert!(!reading.is_empty(), "no reading display: {text:?}");
    assert!(
        reading.iter().any(|l| l.contains("GET /runners/1")),
        "{reading:?}"
    );
    let applying = bar("Applying [");
    assert!(
        applying
            .iter()
            .any(|l| l.contains("/16] ") && l.contains("grp-1: register")),
        "{applying:?}"
    );
    // Elapsed time: "[k/N]" is followed by seconds.
    assert!(
        applying
            .iter()
            .all(|l| l.split("] ").nth(1).is_some_and(|r| r
                .trim_start()
                .split(' ')
                .next()
                .unwrap()
                .ends_with('s'))),
        "{applying:?}"
    );
    // The finished steps are still listed, and the display is gone at the end.
    assert!(text.contains("  [16/16] "), "{text:?}");
    assert!(text.contains("Apply complete"), "{text:?}");
}
