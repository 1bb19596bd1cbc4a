//! The gitlab-runner service, through `runnerform apply`: a real OpenRC service running a
//! stand-in for `gitlab-runner run` that polls the simulator with each runner's token; the
//! systemd unit checked by `systemd-analyze verify`; the errors that must leave nothing
//! half-installed; `--wait-online`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runnerform::sim::{SimOptions, Simulator};

use crate::common::{Output, TestEnvironment};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether this machine runs OpenRC as root. CI sets RUNNERFORM_REQUIRE_OPENRC so that a
/// machine without it fails instead of skipping.
fn openrc() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let up = root && Path::new("/run/openrc").is_dir() && which("rc-service").is_some();
    if !up {
        assert!(
            std::env::var_os("RUNNERFORM_REQUIRE_OPENRC").is_none(),
            "RUNNERFORM_REQUIRE_OPENRC is set but OpenRC is not running as root here \
             (.ci/run installs openrc and creates /run/openrc/softlevel)"
        );
        skipped(
            "needs root and a running OpenRC",
            "run as root on a machine with OpenRC (apt-get install openrc; mkdir -p /run/openrc; \
             touch /run/openrc/softlevel), as `bash .ci/run` does",
        );
    }
    up
}

/// Says loudly, on the process's real stderr, that a service test did not run. libtest
/// captures `eprintln!` of passing tests, so a skip written that way is never seen and a
/// green run looks like a tested one.
fn skipped(why: &str, how: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a service test")
        .to_string();
    let notice = format!(
        "\nSKIPPED {test}: {why}.\n  To run it: {how}.\n  Set RUNNERFORM_REQUIRE_OPENRC=1 to make \
         this skip a failure (CI does).\n\n"
    );
    let _ = std::io::stderr().write_all(notice.as_bytes());
}

fn which(prog: &str) -> Option<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

fn python() -> String {
    // OpenRC starts services with a clean environment, so the interpreter is named by path.
    if Path::new("/usr/bin/python3").exists() {
        return "/usr/bin/python3".into();
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A stand-in for `gitlab-runner run`: re-reads config.toml on every round, as gitlab-runner
/// does, and polls `POST /jobs/request` with each runner's token and this host's system id.
fn standin(python: &str) -> String {
    format!(
        r#"#!{python}
import json, os, secrets, sys, time, tomllib, urllib.request

args = sys.argv[1:]
assert args[0] == "run", args

def opt(name):
    return args[args.index(name) + 1] if name in args else None

config = opt("--config")
here = os.path.dirname(config)
if opt("--working-directory"):
    os.chdir(opt("--working-directory"))
with open(os.path.join(here, "standin.log"), "a") as f:
    f.write("start %d %s\n" % (os.getpid(), " ".join(args)))
sid_path = os.path.join(here, ".runner_system_id")
if not os.path.exists(sid_path):
    with open(sid_path, "w") as f:
        f.write("s_" + secrets.token_hex(6) + "\n")
system_id = open(sid_path).read().strip()
while True:
    try:
        with open(config, "rb") as f:
            runners = tomllib.load(f).get("runners", [])
    except (OSError, ValueError):
        runners = []
    for r in runners:
        body = json.dumps({{"token": r["token"], "system_id": system_id,
                           "info": {{"name": "gitlab-runner", "version": "17.0.0"}}}})
        req = urllib.request.Request(r["url"].rstrip("/") + "/api/v4/jobs/request",
                                     data=body.encode(), method="POST",
                                     headers={{"Content-Type": "application/json"}})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except Exception:
            pass
    time.sleep(0.2)
"#
    )
}

/// A unique OpenRC service, removed however the test ends.
struct Service {
    name: String,
}

impl Service {
    fn new(tag: &str) -> Service {
        let s = Service {
            name: format!("rf-test-{}-{tag}", std::process::id()),
        };
        s.remove();
        s
    }

    fn script(&self) -> PathBuf {
        Path::new("/etc/init.d").join(&self.name)
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(format!("/run/{}.pid", self.name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn running(&self) -> bool {
        self.pid().is_some_and(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        })
    }

    fn status(&self) -> i32 {
        std::process::Command::new(which("rc-service").unwrap())
            .args([&self.name, "status"])
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    }

    fn remove(&self) {
        if let Some(rc) = which("rc-service") {
            for cmd in ["stop", "zap"] {
                let _ = std::process::Command::new(&rc)
                    .args([&self.name, cmd])
                    .output();
            }
        }
        let _ = std::fs::remove_file(self.script());
        let _ = std::fs::remove_file(Path::new("/etc/runlevels/default").join(&self.name));
        let _ = std::fs::remove_file(format!("/run/{}.pid", self.name));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.remove();
    }
}

struct Host {
    env: TestEnvironment,
    sim: Simulator,
    program: PathBuf,
}

impl Host {
    fn new() -> Host {
        let sim = Simulator::start(SimOptions::default()).unwrap();
        let mut env = TestEnvironment::new();
        env.set_env("PATH", PATH);
        env.write("gitlab-token", &sim.admin_token());
        // Spaces in every path the service definition holds.
        let program = env.write("runner bin/gitlab-runner", &standin(&python()));
        chmod(&program, 0o755);
        std::fs::create_dir_all(env.path().join("work dir")).unwrap();
        Host { env, sim, program }
    }

    fn declare(&self, service: &str, runners: &str) {
        self.declare_globals("concurrent 2", service, runners);
    }

    fn declare_globals(&self, globals: &str, service: &str, runners: &str) {
        self.env.write(
            "runners.kdl",
            &format!(
                "gitlab \"{}\" {{\n    token file=\"gitlab-token\"\n}}\nconfig \"config.toml\" \
                 {{\n    {globals}\n}}\n{service}\n{runners}",
                self.sim.url()
            ),
        );
    }

    fn service_node(&self, name: &str, extra: &str) -> String {
        format!(
            "service {{\n    name \"{name}\"\n    binary \"{}\"\n    working_directory \"{}\"\n{extra}}}",
            self.program.display(),
            self.env.path().join("work dir").display()
        )
    }

    fn run(&self, args: &[&str]) -> Output {
        self.env.run(args)
    }

    fn starts(&self) -> Vec<String> {
        std::fs::read_to_string(self.env.path().join("standin.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn ok(out: &Output) {
    assert_eq!(out.code, 0, "{}", out.combined());
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const RUNNERS: &str = r#"runner "svc-a" {
    instance
    executor "shell"
    tags "a"
}
runner "svc-b" {
    instance
    executor "shell"
    tags "b"
}
"#;

#[test]
fn openrc_service_lifecycle() {
    if !openrc() {
        return;
    }
    let h = Host::new();
    let svc = Service::new("life");
    h.declare(&h.service_node(&svc.name, "    user \"nobody\"\n"), RUNNERS);

    // systemctl is installed on this machine but systemd does not run it: OpenRC is chosen.
    let plan = h.run(&["plan"]);
    ok(&plan);
    assert!(
        plan.stdout
            .contains(&format!("Service {} (OpenRC):", svc.name)),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("~ install, then start"),
        "{}",
        plan.stdout
    );

    let applied = h.run(&["apply", "--yes", "--wait-online", "30s"]);
    ok(&applied);
    assert!(
        applied.stdout.contains("online: svc-a"),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("online: svc-b"),
        "{}",
        applied.stdout
    );
    assert!(svc.script().is_file());
    assert_eq!(svc.status(), 0, "rc-service says it is not started");
    assert!(svc.running());
    let first_pid = svc.pid().unwrap();
    assert_eq!(h.starts().len(), 1, "{:?}", h.starts());
    assert!(h.starts()[0].contains("--user nobody"), "{:?}", h.starts());
    // The runners are online because the service polled with their tokens, from this host.
    let polls = h
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/api/v4/jobs/request"))
        .count();
    assert!(polls >= 2, "the stand-in never polled");
    for r in h.sim.runners() {
        assert_eq!(r.status, "online", "{r:?}");
    }
    // The token reaches the runner through config.toml only, never the service definition.
    let script = std::fs::read_to_string(svc.script()).unwrap();
    assert!(crate::common::unmasked_token(&script).is_none(), "{script}");
    assert!(!script.contains("glrt-"));

    let status = h.run(&["status"]);
    ok(&status);
    assert!(
        status
            .stdout
            .contains(&format!("Service {} (OpenRC): running", svc.name)),
        "{}",
        status.stdout
    );

    let again = h.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.combined());
    assert!(
        again.stdout.contains("running, as declared"),
        "{}",
        again.stdout
    );

    // A tag change is a config.toml change: gitlab-runner reloads it, no restart.
    h.declare(
        &h.service_node(&svc.name, "    user \"nobody\"\n"),
        &RUNNERS.replace("tags \"a\"", "tags \"a\" \"a2\""),
    );
    let tag = h.run(&["apply", "--yes"]);
    ok(&tag);
    assert!(!tag.stdout.contains("restart"), "{}", tag.stdout);
    assert!(!tag.stdout.contains("Service "), "{}", tag.stdout);
    assert_eq!(svc.pid(), Some(first_pid));
    assert!(svc.running());
    assert_eq!(h.starts().len(), 1, "{:?}", h.starts());

    // listen_address is read only when gitlab-runner starts: a restart, and the plan says why.
    h.declare_globals(
        "concurrent 2\n    listen_address \"127.0.0.1:9252\"",
        &h.service_node(&svc.name, "    user \"nobody\"\n"),
        &RUNNERS.replace("tags \"a\"", "tags \"a\" \"a2\""),
    );
    let plan = h.run(&["plan", "--offline"]);
    ok(&plan);
    assert!(plan.stdout.contains("~ restart"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("gitlab-runner reads listen_address only when it starts"),
        "{}",
        plan.stdout
    );
    ok(&h.run(&["apply", "--yes", "--offline"]));
    wait_for("the restarted service", || svc.running());
    assert_eq!(h.starts().len(), 2, "{:?}", h.starts());
    let first_pid = svc.pid().unwrap();

    // The service user is part of the definition: reinstall and restart.
    h.declare(
        &h.service_node(&svc.name, "    user \"daemon\"\n"),
        &RUNNERS.replace("tags \"a\"", "tags \"a\" \"a2\""),
    );
    let plan = h.run(&["plan"]);
    ok(&plan);
    assert!(
        plan.stdout.contains("~ reinstall, then restart"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("+        run --config"),
        "{}",
        plan.stdout
    );
    let user = h.run(&["apply", "--yes"]);
    ok(&user);
    assert!(user.stdout.contains("restarted"), "{}", user.stdout);
    wait_for("the restarted service", || svc.running());
    assert_ne!(svc.pid(), Some(first_pid));
    assert_eq!(h.starts().len(), 3, "{:?}", h.starts());
    assert!(h.starts()[2].contains("--user daemon"), "{:?}", h.starts());

    // Stopped, then absent.
    let runners = RUNNERS.replace("tags \"a\"", "tags \"a\" \"a2\"");
    h.declare(
        &h.service_node(&svc.name, "    user \"daemon\"\n    state \"stopped\"\n"),
        &runners,
    );
    let stop = h.run(&["apply", "--yes", "--offline"]);
    ok(&stop);
    assert!(stop.stdout.contains("stopped"), "{}", stop.stdout);
    assert!(!svc.running());
    assert_eq!(svc.status(), 3, "rc-service should say stopped");
    let status = h.run(&["status"]);
    assert!(
        status.stdout.contains("(OpenRC): installed, not running"),
        "{}",
        status.stdout
    );
    assert!(svc.script().is_file());

    h.declare(
        &h.service_node(&svc.name, "    user \"daemon\"\n    state \"absent\"\n"),
        &runners,
    );
    let gone = h.run(&["apply", "--yes", "--offline"]);
    ok(&gone);
    assert!(gone.stdout.contains("uninstalled"), "{}", gone.stdout);
    assert!(!svc.script().exists());
    assert!(!Path::new("/etc/runlevels/default").join(&svc.name).exists());
    let idle = h.run(&["plan", "--offline", "--detailed-exitcode"]);
    assert_eq!(idle.code, 0, "{}", idle.combined());
}

#[test]
fn a_service_that_exits_at_once_is_uninstalled_again() {
    if !openrc() {
        return;
    }
    let h = Host::new();
    let svc = Service::new("dies");
    let program = h.env.write("bin/exits", "#!/bin/sh\nexit 3\n");
    chmod(&program, 0o755);
    h.declare(
        &format!(
            "service {{\n    name \"{}\"\n    binary \"{}\"\n}}",
            svc.name,
            program.display()
        ),
        "",
    );
    let out = h.run(&["apply", "--yes", "--offline"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr.contains("exited right after it started"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("uninstalled again"), "{}", out.stderr);
    assert!(!svc.script().exists(), "left half-installed");
    assert!(!Path::new("/etc/runlevels/default").join(&svc.name).exists());
}

#[test]
fn a_service_installed_by_gitlab_runner_is_adopted_not_installed_again() {
    if !openrc() {
        return;
    }
    let h = Host::new();
    let svc = Service::new("adopt");
    let config = h.env.path().join("config.toml");
    let wd = h.env.path().join("work dir");
    // The script `gitlab-runner install` writes for OpenRC (supervise-daemon, unquoted
    // arguments), with the arguments it builds.
    std::fs::write(
        svc.script(),
        format!(
            "#!/sbin/openrc-run\nsupervisor=supervise-daemon\nname=\"{n}\"\ndescription=\"GitLab \
             Runner\"\ncommand='{p}'\ncommand_args=\"run --config '{c}' --working-directory \
             '{w}' --service {n} --syslog --user nobody\"\n",
            n = svc.name,
            p = h.program.display(),
            c = config.display(),
            w = wd.display()
        ),
    )
    .unwrap();
    chmod(&svc.script(), 0o755);
    h.declare(
        &h.service_node(&svc.name, "    user \"nobody\"\n    state \"stopped\"\n"),
        "",
    );
    let plan = h.run(&["plan", "--offline", "--json"]);
    ok(&plan);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let sp = &json["service"];
    assert_eq!(sp["installed"], true, "{sp}");
    assert_eq!(sp["adopted"], true, "{sp}");
    assert_eq!(sp["steps"], serde_json::json!([]), "{sp}");
    let before = std::fs::read_to_string(svc.script()).unwrap();
    let apply = h.run(&["apply", "--yes", "--offline"]);
    ok(&apply);
    assert_eq!(std::fs::read_to_string(svc.script()).unwrap(), before);

    // A definition that differs (another user) is rewritten, not installed beside it.
    h.declare(
        &h.service_node(&svc.name, "    user \"daemon\"\n    state \"stopped\"\n"),
        "",
    );
    let plan = h.run(&["plan", "--offline"]);
    ok(&plan);
    assert!(plan.stdout.contains("~ reinstall"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("-supervisor=supervise-daemon"),
        "{}",
        plan.stdout
    );
}

/// Runs runnerform as `nobody`, so that the privilege check meets a real non-root user.
fn run_unprivileged(h: &Host, args: &[&str]) -> Output {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return h.run(args);
    }
    chmod(h.env.path(), 0o755);
    for f in ["runners.kdl", "gitlab-token"] {
        chmod(&h.env.path().join(f), 0o644);
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(crate::common::BIN)
        .args(args)
        .current_dir(h.env.path())
        .env_clear()
        .env("PATH", PATH)
        .env("NO_COLOR", "1")
        .output()
        .expect("setpriv");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[test]
fn service_errors_are_diagnostics_and_change_nothing() {
    let h = Host::new();
    let name = format!("rf-test-{}-errors", std::process::id());
    let script = Path::new("/etc/init.d").join(&name);
    let cases = [
        (
            format!(
                "service {{\n    manager \"openrc\"\n    name \"{name}\"\n    binary \"/nonexistent/gitlab-runner\"\n}}"
            ),
            "the service's program /nonexistent/gitlab-runner does not exist",
        ),
        (
            format!(
                "service {{\n    manager \"openrc\"\n    name \"{name}\"\n    binary \"{}\"\n    user \"no-such-user-rf\"\n}}",
                h.program.display()
            ),
            "there is no user \"no-such-user-rf\" on this machine",
        ),
        (
            format!(
                "service {{\n    manager \"openrc\"\n    name \"{name}\"\n    binary \"{}\"\n    user_service #true\n}}",
                h.program.display()
            ),
            "OpenRC has no per-user services",
        ),
        (
            format!(
                "service {{\n    manager \"openrc\"\n    name \"{name}\"\n    binary \"bin/gitlab-runner\"\n}}"
            ),
            "bin/gitlab-runner is not an absolute path",
        ),
    ];
    for (node, message) in cases {
        h.declare(&node, RUNNERS);
        for cmd in ["plan", "apply"] {
            let mut args = vec![cmd, "--offline"];
            if cmd == "apply" {
                args.push("--yes");
            }
            let out = h.run(&args);
            assert_eq!(out.code, 1, "{node}\n{}", out.combined());
            assert!(out.stderr.contains(message), "{node}\n{}", out.stderr);
            assert!(
                out.stderr.contains("runners.kdl:"),
                "no source location:\n{}",
                out.stderr
            );
        }
        assert!(!h.env.path().join("config.toml").exists(), "{node}");
        assert!(!script.exists(), "{node}");
    }

    h.declare(
        &format!(
            "service {{\n    manager \"openrc\"\n    name \"{name}\"\n    binary \"{}\"\n}}",
            h.program.display()
        ),
        RUNNERS,
    );
    let out = run_unprivileged(&h, &["apply", "--yes", "--offline"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(out.stderr.contains("needs root"), "{}", out.stderr);
    assert!(out.stderr.contains("install, start"), "{}", out.stderr);
    assert!(!h.env.path().join("config.toml").exists());
    assert!(!script.exists());
}

#[test]
fn wait_online_names_the_runners_that_never_came_online() {
    let h = Host::new();
    h.declare("", RUNNERS);
    let out = h.run(&["apply", "--yes", "--wait-online", "2s"]);
    assert_eq!(out.code, 1, "{}", out.combined());
    assert!(
        out.stderr
            .contains("2 runners did not come online within 2s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("svc-a: GitLab says it is"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("svc-b: GitLab says it is"),
        "{}",
        out.stderr
    );
    // The apply itself happened; only the wait failed.
    assert_eq!(h.sim.runners().len(), 2);

    let bad = h.run(&["apply", "--yes", "--wait-online", "soon"]);
    assert_eq!(bad.code, 1, "{}", bad.combined());
    assert!(bad.stderr.contains("is not a duration"), "{}", bad.stderr);
    let offline = h.run(&["apply", "--yes", "--offline", "--wait-online", "5s"]);
    assert_eq!(offline.code, 1, "{}", offline.combined());
    assert!(offline.stderr.contains("--offline"), "{}", offline.stderr);
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = which("systemd-analyze") else {
        assert!(
            std::env::var_os("RUNNERFORM_REQUIRE_OPENRC").is_none(),
            "systemd-analyze is missing"
        );
        skipped(
            "systemd-analyze is not installed",
            "apt-get install systemd (it only provides systemd-analyze here; nothing is booted)",
        );
        return;
    };
    let h = Host::new();
    for user_level in [false, true] {
        h.declare(
            &format!(
                "service {{\n    manager \"systemd\"\n    binary \"{}\"\n    user \"gitlab-runner\"\n    \
                 working_directory \"/home/gitlab runner\"\n    user_service {}\n    environment {{\n        \
                 HTTPS_PROXY \"http://proxy:3128/$x%y\"\n    }}\n}}",
                h.program.display(),
                if user_level { "#true" } else { "#false" }
            ),
            "",
        );
        let loaded = runnerform::desired::read(
            &h.env.path().join("runners.kdl"),
            runnerform::desired::RefCheck::Settings,
        );
        let d = loaded.desired.expect("the file is valid");
        let spec = runnerform::service::spec(&d, &h.env.path().join("config.toml"), Path::new("/"))
            .unwrap()
            .unwrap();
        assert_eq!(spec.user_level, user_level);
        let unit = spec.contents.clone().unwrap();
        assert!(unit.contains("ExecStart=\""), "{unit}");
        assert!(!unit.contains("glrt-"));
        let file = h.env.write("unit/gitlab-runner.service", &unit);
        let out = std::process::Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(&file)
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
            "systemd-analyze verify complained about\n{unit}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // What the unit runs reads back as what was declared.
        let back = runnerform::service::render::parse_systemd(&unit).unwrap();
        assert_eq!(back, spec.definition);
        assert!(back.args.contains(&"/home/gitlab runner".to_string()));
    }
}

#[test]
fn systemd_counts_only_when_it_is_running() {
    use runnerform::service::{Kind, observe::detect};
    let root = tempfile::tempdir().unwrap();
    if cfg!(target_os = "linux") {
        // systemctl on PATH proves nothing; /run/systemd/system is what sd_booted checks.
        assert_eq!(detect(root.path()), None);
        std::fs::create_dir_all(root.path().join("run/openrc")).unwrap();
        assert_eq!(detect(root.path()), Some(Kind::OpenRc));
        std::fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
        assert_eq!(detect(root.path()), Some(Kind::Systemd));
    }
}

#[test]
fn import_describes_the_installed_service_and_its_plan_adopts_it() {
    if !openrc() {
        return;
    }
    let h = Host::new();
    let svc = Service::new("import");
    let config = h.env.write(
        "config.toml",
        "concurrent = 1\n\n[[runners]]\n  name = \"imported\"\n  url = \"https://gitlab.example.com\"\n  \
         id = 7\n  token = \"glrt-importedtoken0000000\"\n  executor = \"shell\"\n",
    );
    std::fs::write(
        svc.script(),
        format!(
            "#!/sbin/openrc-run\nsupervisor=supervise-daemon\nname=\"{n}\"\ncommand='{p}'\n\
             command_args=\"run --config '{c}' --working-directory '{w}' --service {n} --syslog \
             --user nobody\"\n",
            n = svc.name,
            p = h.program.display(),
            c = config.display(),
            w = h.env.path().join("work dir").display()
        ),
    )
    .unwrap();
    chmod(&svc.script(), 0o755);
    let out = h.run(&[
        "--config-toml",
        "config.toml",
        "import",
        "--service-name",
        &svc.name,
        "--output",
        "imported.kdl",
    ]);
    ok(&out);
    let kdl = std::fs::read_to_string(h.env.path().join("imported.kdl")).unwrap();
    for want in [
        "service {".to_string(),
        format!("name \"{}\"", svc.name),
        "manager \"openrc\"".into(),
        "user \"nobody\"".into(),
        "state \"stopped\"".into(),
        "adopted as it is".into(),
    ] {
        assert!(kdl.contains(&want), "{want} missing from\n{kdl}");
    }
    let plan = h.run(&["-f", "imported.kdl", "plan", "--offline", "--json"]);
    ok(&plan);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(json["service"]["adopted"], true, "{}", json["service"]);
    assert_eq!(json["service"]["steps"], serde_json::json!([]));
    // Taking ownership of the runner is the only change.
    assert_eq!(json["runners"][0]["action"], "adopt", "{}", plan.stdout);
    let before = std::fs::read_to_string(svc.script()).unwrap();
    ok(&h.run(&["-f", "imported.kdl", "apply", "--yes", "--offline"]));
    assert_eq!(std::fs::read_to_string(svc.script()).unwrap(), before);
    let again = h.run(&[
        "-f",
        "imported.kdl",
        "plan",
        "--offline",
        "--detailed-exitcode",
    ]);
    assert_eq!(again.code, 0, "{}", again.combined());
}
