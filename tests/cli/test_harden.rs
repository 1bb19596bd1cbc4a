//! Hostile and unlucky inputs (design invariants 11 and 12): files that would crash, hang or
//! flood the terminal; credentials that must reach only the declared GitLab; secrets masked
//! by where they came from; real-world files (CRLF, symlinks, modes) kept as they are.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::TestEnvironment;

const GITLAB: &str = "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\n";

/// A one-runner declaration whose config.toml entry is `a`.
fn declare(env: &TestEnvironment, extra: &str) {
    env.write(
        "runners.kdl",
        &format!(
            "{GITLAB}config \"config.toml\"\nrunner \"a\" {{\n    instance\n    executor \"shell\"\n    {extra}\n}}\n"
        ),
    );
}

#[test]
fn blocks_nested_thousands_deep_are_a_located_error_not_a_crash() {
    let env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        &format!("{}{}\n", "a {".repeat(1300), "}".repeat(1300)),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("nested more than 32 deep"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("runners.kdl:1:"), "{}", out.stderr);
    let plan = env.run(&["plan", "--offline"]);
    assert_eq!(plan.code, 1, "{}", plan.combined());
}

#[test]
fn a_line_of_type_annotations_gives_one_short_error() {
    let env = TestEnvironment::new();
    env.write("runners.kdl", &format!("a {}b\n", "(t)".repeat(10_000)));
    let start = Instant::now();
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("two type annotations in a row"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.len() < 4_000,
        "{} bytes of output",
        out.stderr.len()
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_error_past_column_65535_is_shown_in_a_window_of_its_line() {
    let env = TestEnvironment::new();
    let tags = "\"t\" ".repeat(20_000);
    env.write(
        "runners.kdl",
        &format!(
            "{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n    tags {tags}1\n}}\n"
        ),
    );
    let out = env.run(&["validate"]);
    assert_eq!(
        out.code,
        1,
        "no panic: {}",
        &out.stderr[..out.stderr.len().min(2000)]
    );
    assert!(
        out.stderr.contains("runners.kdl:7:80010"),
        "{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    assert!(
        out.stderr.len() < 40_000,
        "{} bytes of output",
        out.stderr.len()
    );
    // The same for config.toml, through plan.
    declare(&env, "");
    env.write(
        "config.toml",
        &format!("name = \"{}\" oops\n", "x".repeat(70_000)),
    );
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("config.toml:1:700"),
        "{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    assert!(
        out.stderr.len() < 4_000,
        "{} bytes of output",
        out.stderr.len()
    );
}

#[test]
fn problems_shown_per_file_are_capped_and_the_rest_counted() {
    let env = TestEnvironment::new();
    let body: String = (0..300).map(|i| format!("    bogus_key_{i} 1\n")).collect();
    env.write(
        "runners.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n{body}}}\n"),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.matches("runnerform::unknown_key").count(),
        50,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("250 more errors"), "{}", out.stderr);
    assert!(
        out.stderr.contains("in runners.kdl not shown"),
        "{}",
        out.stderr
    );
    // The totals count every problem found, not only those shown.
    assert!(out.stderr.contains("300 errors found"), "{}", out.stderr);
    let json = env.run(&["validate", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["errors"], 300, "{}", json.stdout);
}

#[test]
fn devices_fifos_and_directories_are_refused_before_reading() {
    let env = TestEnvironment::new();
    let fifo = env.path().join("pipe.kdl");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for (target, what) in [
        ("/dev/zero", "a device"),
        ("/dev/urandom", "a device"),
        ("pipe.kdl", "a FIFO"),
    ] {
        env.write("runners.kdl", &format!("include \"{target}\"\n"));
        let start = Instant::now();
        let out = env.run(&["validate"]);
        assert_eq!(out.code, 1, "{}", out.combined());
        assert!(out.stderr.contains(what), "{target}: {}", out.stderr);
        assert!(out.stderr.contains("runners.kdl:1:9"), "{}", out.stderr);
        assert!(start.elapsed() < Duration::from_secs(10), "{target}");
    }
    let out = env.run(&["-f", "/dev/zero", "validate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("a device"), "{}", out.stderr);
}

#[test]
fn invalid_utf8_in_kdl_has_a_file_line_and_column() {
    let env = TestEnvironment::new();
    let mut bytes = format!("{GITLAB}runner \"a\" {{\n    tags \"").into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\"\n}\n");
    std::fs::write(env.path().join("runners.kdl"), bytes).unwrap();
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
    assert!(out.stderr.contains("runners.kdl:5:11"), "{}", out.stderr);
}

#[test]
fn a_v2_mistake_gets_the_v2_error_with_a_hint_and_v1_files_still_read() {
    let env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor shell\n    locked #true\n    run_untagged false\n}}\n"),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("`false` -> `#false`"), "{}", out.stderr);
    assert!(out.stderr.contains("runners.kdl:8:18"), "{}", out.stderr);
    assert!(!out.stderr.contains("plain identifiers"), "{}", out.stderr);
    env.write(
        "runners.kdl",
        &format!("{GITLAB}runner \"a\" {{\n    instance\n    executor \"shell\"\n    run_untagged true\n}}\n"),
    );
    let out = env.run(&["validate"]);
    assert_eq!(out.code, 0, "a whole v1 file is read: {}", out.combined());
}

#[test]
fn a_directory_of_files_is_read_as_one() {
    let env = TestEnvironment::new();
    env.write("fleet/gitlab.kdl", GITLAB);
    env.write(
        "fleet/runners.kdl",
        "runner \"a\" {\n    instance\n    executor \"shell\"\n}\n",
    );
    env.write("fleet/notes.txt", "not KDL");
    let out = env.run(&["-f", "fleet", "validate"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    env.write("empty/readme.txt", "");
    let out = env.run(&["-f", "empty", "validate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("holds no .kdl file"), "{}", out.stderr);
}

const ENTRY: &str = "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n  url = \"https://gitlab.example.com\"\n  id = 7\n  token = \"LegacyRunnerToken0123456789\"\n  executor = \"shell\"\n  shell = \"bash\"\n";

#[test]
fn crlf_files_keep_crlf_and_mixed_files_keep_each_lines_ending() {
    let env = TestEnvironment::new();
    declare(&env, "shell \"sh\"");
    let crlf = ENTRY.replace('\n', "\r\n");
    let mixed = ENTRY.replacen("concurrent = 1\n", "concurrent = 1\r\n", 1);
    for before in [crlf, mixed] {
        env.write("config.toml", &before);
        let plan = env.run(&["plan", "--offline"]);
        assert_eq!(plan.code, 0, "{}", plan.combined());
        let changed: Vec<&str> = plan
            .stdout
            .lines()
            .filter(|l| {
                (l.starts_with('-') || l.starts_with('+'))
                    && !l.starts_with("---")
                    && !l.starts_with("+++")
            })
            .collect();
        assert_eq!(
            changed.len(),
            2,
            "only the shell line changes:\n{}",
            plan.stdout
        );
        let out = env.run(&["apply", "--offline", "--yes"]);
        assert_eq!(out.code, 0, "{}", out.combined());
        let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
        let expected = before.replace("shell = \"bash\"", "shell = \"sh\"");
        assert_eq!(after, expected);
        let again = env.run(&["plan", "--offline", "--detailed-exitcode"]);
        assert_eq!(again.code, 0, "{}", again.combined());
        let _ = std::fs::remove_file(env.path().join(".runnerform-state.json"));
        for e in std::fs::read_dir(env.path()).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().contains("state") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[test]
fn a_symlinked_config_toml_keeps_its_link_and_a_dangling_one_is_an_error() {
    let env = TestEnvironment::new();
    declare(&env, "shell \"sh\"");
    env.write("real/config.toml", ENTRY);
    let link = env.path().join("config.toml");
    std::os::unix::fs::symlink("real/config.toml", &link).unwrap();
    let out = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let target = std::fs::read_to_string(env.path().join("real/config.toml")).unwrap();
    assert!(target.contains("shell = \"sh\""), "{target}");

    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("gone/config.toml", &link).unwrap();
    for args in [
        &["plan", "--offline"][..],
        &["apply", "--offline", "--yes"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.combined());
        assert!(out.stderr.contains("gone/config.toml"), "{}", out.stderr);
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!env.path().join("gone").exists());
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_config_toml_holding_tokens_becomes_private_and_saved_plans_are_private() {
    let env = TestEnvironment::new();
    declare(&env, "shell \"sh\"");
    let path = env.write("config.toml", ENTRY);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let plan = env.run(&["plan", "--offline", "--out", "saved.plan"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    assert!(
        plan.stdout.contains("new mode 0600"),
        "the plan says so:\n{}",
        plan.stdout
    );
    assert_eq!(mode(&env.path().join("saved.plan")), 0o600);
    let out = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert_eq!(mode(&path), 0o600);
}

/// A legacy runner token has no prefix: it is masked because it came from a token field.
#[test]
fn a_legacy_token_is_masked_in_plan_text_json_saved_plans_and_diagnostics() {
    let env = TestEnvironment::new();
    declare(&env, "shell \"sh\"");
    env.write("config.toml", ENTRY);
    let secret = "LegacyRunnerToken0123456789";
    let text = env.run(&["plan", "--offline", "-v"]);
    let json = env.run(&["plan", "--offline", "--json"]);
    let saved = env.run(&["plan", "--offline", "--out", "saved.plan"]);
    for out in [&text, &json, &saved] {
        assert_eq!(out.code, 0, "{}", out.combined());
        assert!(!out.combined().contains(secret), "{}", out.combined());
    }
    assert!(
        text.stdout.contains("token = \"****"),
        "the diff shows the line:\n{}",
        text.stdout
    );
    let file = std::fs::read_to_string(env.path().join("saved.plan")).unwrap();
    assert!(!file.contains(secret));
    // A config.toml that does not parse: the excerpt around the error shows the token line.
    env.write(
        "config.toml",
        &ENTRY.replace("executor = \"shell\"", "executor = shell"),
    );
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("token = \"****"), "{}", out.stderr);
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
    // A token of any shape written inline in KDL.
    env.write(
        "inline.kdl",
        "gitlab \"https://gitlab.example.com\" {\n    token \"InlineLegacyToken987654321\"\n}\n",
    );
    let out = env.run(&["-f", "inline.kdl", "validate"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("inline"), "{}", out.stderr);
    assert!(!out.stderr.contains("InlineLegacyToken"), "{}", out.stderr);
}

/// An HTTP server on 127.0.0.1 that answers every request with `respond(request)` and keeps
/// what it was sent.
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(respond: impl Fn(&str) -> String + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&buf).to_string();
                log.lock().unwrap().push(request.clone());
                let _ = s.write_all(respond(&request).as_bytes());
            }
        });
        Fake { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn declare_gitlab(env: &TestEnvironment, url: &str, token: &str) {
    env.write("gitlab-token", token);
    env.write(
        "runners.kdl",
        &format!("gitlab \"{url}\" {{\n    token file=\"gitlab-token\"\n}}\nconfig \"config.toml\"\nrunner \"a\" {{\n    instance\n    executor \"shell\"\n}}\n"),
    );
}

#[test]
fn redirects_are_not_followed_and_no_credential_reaches_another_origin() {
    let other = Fake::start(|_| answer("200 OK", "", "{\"scopes\": [\"api\"]}"));
    let target = format!("{}/api/v4/personal_access_tokens/self", other.url());
    let env = TestEnvironment::new();
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let location = format!("Location: {target}\r\n");
        let gitlab = Fake::start(move |_| answer(status, &location, ""));
        declare_gitlab(&env, &gitlab.url(), "glpat-RedirectedTok3n0123");
        let out = env.run(&["plan"]);
        assert_eq!(out.code, 1, "{status}: {}", out.combined());
        assert!(out.stderr.contains(&status[..3]), "{}", out.stderr);
        assert!(out.stderr.contains("another origin"), "{}", out.stderr);
        assert!(
            out.stderr.contains(&other.url()),
            "says where it pointed: {}",
            out.stderr
        );
        assert!(!gitlab.requests().is_empty());
    }
    assert_eq!(
        other.requests(),
        Vec::<String>::new(),
        "nothing reached the other origin"
    );

    // A redirect within the same GitLab is reported as what it is, not as a 404.
    let same = Fake::start(|req| {
        let location = "Location: /elsewhere\r\n";
        if req.starts_with("GET /elsewhere") {
            answer("404 Not Found", "", "{\"message\": \"404 Not Found\"}")
        } else {
            answer("302 Found", location, "")
        }
    });
    declare_gitlab(&env, &same.url(), "glpat-RedirectedTok3n0123");
    let out = env.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("302"), "{}", out.stderr);
    assert!(out.stderr.contains("follows no redirect"), "{}", out.stderr);
    assert!(!out.stderr.contains("404"), "{}", out.stderr);
    assert_eq!(same.requests().len(), 1);
}

/// The access token from a `file=` reference, without a prefix, echoed by GitLab in its error
/// body in clear and URL-encoded.
#[test]
fn a_token_from_a_file_echoed_url_encoded_by_gitlab_is_masked() {
    let token = "legacy+Secret/Value=0123456789";
    let url_encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let echo = url_encoded.clone();
    let gitlab = Fake::start(move |_| {
        answer(
            "401 Unauthorized",
            "",
            &format!(
                "{{\"message\": \"401 Unauthorized: private_token={echo} ({})\"}}",
                "legacy+Secret/Value=0123456789"
            ),
        )
    });
    let env = TestEnvironment::new();
    declare_gitlab(&env, &gitlab.url(), token);
    let out = env.run(&["plan"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(gitlab.requests()[0].contains(token), "the fake did see it");
    for shown in [token, url_encoded.as_str(), "Secret"] {
        assert!(
            !out.combined().contains(shown),
            "{shown} shown:\n{}",
            out.combined()
        );
    }
}

#[test]
fn a_gitlab_token_with_a_newline_is_named_as_such() {
    let gitlab = Fake::start(|_| answer("200 OK", "", "{}"));
    let mut env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        &format!(
            "gitlab \"{}\" {{\n    token env=\"GITLAB_TOKEN\"\n}}\nconfig \"config.toml\"\n",
            gitlab.url()
        ),
    );
    for value in ["glpat-abcdefgh12345678\n", "glpat-abcd\nefgh12345678"] {
        env.set_env("GITLAB_TOKEN", value);
        let start = Instant::now();
        let out = env.run(&["plan"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("contains a line break"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("attempts"), "{}", out.stderr);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    assert!(gitlab.requests().is_empty(), "nothing was sent");
}

/// Import, then plan and apply offline with no secret exported: everything is adopted and
/// config.toml keeps every byte.
#[test]
fn every_fixture_imports_and_plans_offline_without_any_secret_exported() {
    for fixture in crate::test_fixtures::fixtures() {
        let name = fixture.file_stem().unwrap().to_string_lossy().to_string();
        let before = std::fs::read_to_string(&fixture).unwrap();
        let env = TestEnvironment::new();
        let kdl = crate::test_import::import_into(&env, &name, &before);
        let plan = env.run(&["plan", "--offline"]);
        assert_eq!(plan.code, 0, "{name}:\n{kdl}\n{}", plan.combined());
        let apply = env.run(&["apply", "--offline", "--yes"]);
        assert_eq!(apply.code, 0, "{name}: {}", apply.combined());
        let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
        // An entry without a name gets the one the imported file declares for it (its
        // identity); nothing else may change.
        let named: String = after
            .lines()
            .filter(|l| !l.trim().starts_with("name = \"runner-") || before.contains(l.trim()))
            .map(|l| format!("{l}\n"))
            .collect();
        let before_lines: String = before.lines().map(|l| format!("{l}\n")).collect();
        assert_eq!(named, before_lines, "{name}: config.toml changed");
        assert!(!after.contains("gitlab.example.com") || before.contains("gitlab.example.com"));
    }
}

#[test]
fn an_unresolved_secret_keeps_the_entrys_value_but_a_new_entry_needs_it() {
    let env = TestEnvironment::new();
    env.write("config.toml", &ENTRY.replace("  shell = \"bash\"\n", "  shell = \"bash\"\n  [runners.cache]\n    [runners.cache.s3]\n      SecretKey = \"KeptS3SecretValue123\"\n"));
    declare(
        &env,
        "cache {\n        s3 {\n            SecretKey env=\"S3_SECRET\"\n        }\n    }",
    );
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    assert!(out.combined().contains("S3_SECRET"), "{}", out.combined());
    assert!(
        out.stdout.contains("keeps the value config.toml holds"),
        "{}",
        out.stdout
    );
    assert!(
        !out.combined().contains("KeptS3SecretValue123"),
        "{}",
        out.combined()
    );
    let apply = env.run(&["apply", "--offline", "--yes"]);
    assert_eq!(apply.code, 0, "{}", apply.combined());
    let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    assert!(
        after.contains("SecretKey = \"KeptS3SecretValue123\""),
        "{after}"
    );

    let env = TestEnvironment::new();
    env.write(
        "runners.kdl",
        &format!("{GITLAB}config \"config.toml\"\nrunner \"new\" {{\n    instance\n    executor \"shell\"\n    cache {{\n        s3 {{\n            SecretKey env=\"S3_SECRET\"\n        }}\n    }}\n}}\n"),
    );
    let out = env.run(&["plan", "--offline"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("S3_SECRET"), "{}", out.stderr);
}

/// config.toml as gitlab-runner writes it, with `n` entries besides `a` (in the middle).
fn large_config(n: usize) -> String {
    let mut s = String::from(
        "concurrent = 64\ncheck_interval = 3\n\n[session_server]\n  session_timeout = 1800\n",
    );
    for i in 0..n {
        if i == n / 2 {
            s.push_str(&ENTRY["concurrent = 1\n".len()..]);
        }
        s.push_str(&format!(
            "\n[[runners]]\n  name = \"r{i:06}\"\n  url = \"https://gitlab.example.com\"\n  id = {}\n  \
             token = \"glrt-t1_large{i:012}\"\n  token_obtained_at = 2026-01-01T00:00:00Z\n  \
             token_expires_at = 0001-01-01T00:00:00Z\n  executor = \"docker\"\n  [runners.docker]\n    \
             image = \"rust:1.82\"\n    privileged = false\n    volumes = [\"/cache\"]\n  [runners.cache]\n    \
             Type = \"s3\"\n    [runners.cache.s3]\n      BucketName = \"cache-{i}\"\n",
            i + 100
        ));
    }
    s
}

#[test]
fn a_large_config_toml_is_planned_and_applied_within_ten_times_its_size_in_memory() {
    let env = TestEnvironment::new();
    declare(&env, "shell \"sh\"");
    let before = large_config(40_000);
    env.write("config.toml", &before);
    let size = before.len() as u64;
    assert!(size > 15 << 20, "{size} bytes");
    for args in [&["plan", "--offline"][..], &["apply", "--offline", "--yes"]] {
        let (out, peak) = env.run_measured(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        eprintln!("{args:?}: {:.1}x the file", peak as f64 / size as f64);
        assert!(
            peak <= 10 * size,
            "{args:?} peaked at {} MiB for a {} MiB config.toml",
            peak >> 20,
            size >> 20
        );
    }
    let after = std::fs::read_to_string(env.path().join("config.toml")).unwrap();
    assert_eq!(
        after,
        before.replace("shell = \"bash\"", "shell = \"sh\""),
        "only the declared key changed"
    );
}
