//! Definition files: the OpenRC script and the systemd unit runnerform writes, and reading
//! the program, arguments and environment back out of an installed one (runnerform's own,
//! or one written by `gitlab-runner install`).

use std::fmt::Write;
use std::path::PathBuf;

use super::Definition;

/// First line after the interpreter line of every file runnerform writes.
pub const MARKER: &str = "Managed by runnerform";

/// A word for a POSIX shell: single-quoted unless it needs no quoting.
pub fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A double-quoted shell word: nothing in it is expanded when OpenRC sources the script.
fn dq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The OpenRC script. Its own `start` and `stop` call start-stop-daemon (with only the
/// options Debian's and OpenRC's own start-stop-daemon share) with each word quoted, because OpenRC's defaults split `command`, `command_args` and `directory` on
/// spaces; the daemon is stopped by its pidfile alone, so a program path with spaces (or a
/// script whose process is its interpreter) is stopped all the same.
pub fn openrc_script(name: &str, d: &Definition) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/sbin/openrc-run");
    let _ = writeln!(
        s,
        "# {MARKER}: `runnerform apply` rewrites this file from the service node."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "description=\"GitLab Runner\"");
    let _ = writeln!(s, "pidfile=\"/run/{name}.pid\"");
    let _ = writeln!(s, "command={}", sh_quote(&d.program.display().to_string()));
    let args: Vec<String> = d.args.iter().map(|a| sh_quote(a)).collect();
    let _ = writeln!(s, "command_args={}", dq(&args.join(" ")));
    for (k, v) in &d.environment {
        let _ = writeln!(s, "export {k}={}", sh_quote(v));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "depend() {{");
    let _ = writeln!(s, "    use net logger dns");
    let _ = writeln!(s, "}}");
    let _ = writeln!(s);
    let _ = writeln!(s, "start() {{");
    let _ = writeln!(s, "    ebegin \"Starting ${{RC_SVCNAME}}\"");
    let _ = writeln!(
        s,
        "    start-stop-daemon --start --background --make-pidfile --pidfile \"${{pidfile}}\" \\"
    );
    let _ = writeln!(
        s,
        "        --exec {} -- \\",
        sh_quote(&d.program.display().to_string())
    );
    let _ = writeln!(s, "        {} || {{ eend 1; return 1; }}", args.join(" "));
    // start-stop-daemon returns once the process is forked; a program that exits at once
    // (a bad argument, an unreadable config) must still fail the start, so apply can report
    // it and undo the install.
    let _ = writeln!(s, "    sleep 1");
    let _ = writeln!(s, "    pid=$(cat \"${{pidfile}}\" 2>/dev/null)");
    // A process that exited but was not reaped yet still answers kill -0: a zombie counts as
    // exited.
    let _ = writeln!(
        s,
        "    [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null && ! grep -qs '^[0-9]* (.*) Z ' \"/proc/$pid/stat\""
    );
    let _ = writeln!(
        s,
        "    eend $? \"the program exited right after it started\""
    );
    let _ = writeln!(s, "}}");
    let _ = writeln!(s);
    let _ = writeln!(s, "stop() {{");
    let _ = writeln!(s, "    ebegin \"Stopping ${{RC_SVCNAME}}\"");
    let _ = writeln!(
        s,
        "    start-stop-daemon --stop --oknodo --pidfile \"${{pidfile}}\" --retry QUIT/30/TERM/10/KILL/5"
    );
    let _ = writeln!(s, "    eend $?");
    let _ = writeln!(s, "}}");
    s
}

/// A word of a systemd command line: always double-quoted, with `\`, `"`, `%` and `$`
/// escaped so that systemd passes it through unchanged.
pub fn systemd_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The systemd unit: gitlab-runner's own unit, without the settings `systemd-analyze verify`
/// warns about.
pub fn systemd_unit(d: &Definition, user_level: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {MARKER}: `runnerform apply` rewrites this file from the service node."
    );
    let _ = writeln!(s, "[Unit]");
    let _ = writeln!(s, "Description=GitLab Runner");
    if !user_level {
        let _ = writeln!(s, "After=network.target");
    }
    let _ = writeln!(s, "StartLimitIntervalSec=5");
    let _ = writeln!(s, "StartLimitBurst=10");
    let _ = writeln!(s);
    let _ = writeln!(s, "[Service]");
    let mut exec = systemd_quote(&d.program.display().to_string());
    for a in &d.args {
        exec.push(' ');
        exec.push_str(&systemd_quote(a));
    }
    let _ = writeln!(s, "ExecStart={exec}");
    for (k, v) in &d.environment {
        let _ = writeln!(s, "Environment={}", systemd_quote(&format!("{k}={v}")));
    }
    let _ = writeln!(s, "Restart=always");
    let _ = writeln!(s, "RestartSec=120");
    let _ = writeln!(s);
    let _ = writeln!(s, "[Install]");
    let _ = writeln!(
        s,
        "WantedBy={}",
        if user_level {
            "default.target"
        } else {
            "multi-user.target"
        }
    );
    s
}

/// Splits a POSIX shell word list (single quotes, double quotes, backslashes), enough for
/// the lines an OpenRC script sets. `None` on unbalanced quotes.
pub fn sh_split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Splits a systemd command line: double-quoted words with escapes, `%%` and `$$` unescaped.
pub fn systemd_split(s: &str) -> Option<Vec<String>> {
    let words = sh_split(s)?;
    Some(
        words
            .into_iter()
            .map(|w| w.replace("%%", "%").replace("$$", "$"))
            .collect(),
    )
}

/// What an installed OpenRC script runs: `command`, `command_args` and exported variables.
pub fn parse_openrc(text: &str) -> Option<Definition> {
    let mut program = None;
    let mut args = Vec::new();
    let mut environment = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("command=") {
            program = sh_split(v)?.into_iter().next().map(PathBuf::from);
        } else if let Some(v) = line.strip_prefix("command_args=") {
            // command_args is evaluated by the shell: its quoted value is itself a word list.
            let outer = sh_split(v)?.join(" ");
            args = sh_split(&outer)?;
        } else if let Some(v) = line.strip_prefix("export ")
            && let Some((k, v)) = v.split_once('=')
        {
            environment.push((k.to_string(), sh_split(v)?.join(" ")));
        }
    }
    Some(Definition {
        program: program?,
        args,
        environment,
    })
}

/// What an installed systemd unit runs: `ExecStart` and `Environment`.
pub fn parse_systemd(text: &str) -> Option<Definition> {
    let mut exec = None;
    let mut environment = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("ExecStart=") {
            exec = Some(systemd_split(v)?);
        } else if let Some(v) = line.strip_prefix("Environment=") {
            for pair in systemd_split(v)? {
                if let Some((k, v)) = pair.split_once('=') {
                    environment.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    let mut words = exec?.into_iter();
    Some(Definition {
        program: PathBuf::from(words.next()?),
        args: words.collect(),
        environment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> Definition {
        Definition {
            program: "/opt/gitlab runner/bin/gitlab-runner".into(),
            args: vec![
                "run".into(),
                "--config".into(),
                "/etc/gitlab runner/config.toml".into(),
                "--service".into(),
                "gitlab-runner".into(),
                "--user".into(),
                "it's me".into(),
            ],
            environment: vec![("HTTPS_PROXY".into(), "http://proxy:3128/$x%y".into())],
        }
    }

    #[test]
    fn openrc_script_reads_back_as_written() {
        let d = def();
        assert_eq!(parse_openrc(&openrc_script("gitlab-runner", &d)), Some(d));
    }

    #[test]
    fn systemd_unit_reads_back_as_written() {
        let d = def();
        assert_eq!(parse_systemd(&systemd_unit(&d, false)), Some(d));
    }

    #[test]
    fn reads_the_unit_gitlab_runner_install_writes() {
        let unit = "[Service]\nExecStart=/usr/bin/gitlab-runner \"run\" \"--config\" \
                    \"/etc/gitlab-runner/config.toml\" \"--working-directory\" \
                    \"/home/gitlab-runner\" \"--service\" \"gitlab-runner\" \"--user\" \
                    \"gitlab-runner\"\n";
        let d = parse_systemd(unit).unwrap();
        assert_eq!(d.program, PathBuf::from("/usr/bin/gitlab-runner"));
        assert_eq!(d.args[0], "run");
        assert_eq!(d.args.last().unwrap(), "gitlab-runner");
        assert_eq!(d.args.len(), 9);
    }

    #[test]
    fn shell_quoting_round_trips() {
        for w in ["plain", "with space", "it's", "", "a\"b", "$HOME", "a\\b"] {
            assert_eq!(sh_split(&sh_quote(w)), Some(vec![w.to_string()]), "{w}");
        }
    }
}
