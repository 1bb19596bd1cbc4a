//! The command line: argument parsing, output, and one module per command.
//!
//! Commands return an [`Exit`]; only this layer writes to the terminal.

mod commands;
mod host;
mod interrupt;
mod plan_view;
mod planning;
mod progress;
mod terraform;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::exit::Exit;
pub use ui::Ui;

const ABOUT: &str = "Config-as-code for GitLab Runner hosts";

const LONG_ABOUT: &str = "\
Config-as-code for GitLab Runner hosts.

The runners a host should have are declared in a KDL file (default ./runners.kdl). runnerform
checks that file, compares it with gitlab-runner's config.toml, with GitLab and with the OS
service that runs gitlab-runner, and applies the difference without an interactive prompt.

Exit codes: 0 success; 1 error (bad input, failed check; nothing was changed by the failed
step); 2 only with `plan --detailed-exitcode`: changes are pending.

Terraform's single-dash flags are understood where runnerform has the same flag (-out, -auto-approve,
-target, -detailed-exitcode, -json, -lock-timeout, -no-color, -parallelism); the others are refused
with a hint. Durations are seconds (90) or Go durations (90s, 5m, 1h30m).";

/// `-V`: the release and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RUNNERFORM_COMMIT"),
    ")"
);

/// `--version`: also where the config.toml key inventory comes from, which decides what
/// gitlab-runner keys runnerform knows.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("RUNNERFORM_COMMIT"),
    "\nconfig.toml keys: ",
    env!("RUNNERFORM_KEYS_FROM")
);

const EXAMPLES: &str = "\
Examples:
  runnerform validate
  runnerform plan --detailed-exitcode         # exit 2 when the host drifted from the file
  runnerform apply --yes -c /etc/gitlab-runner/config.toml
  runnerform <command> --help                 # each command's own examples";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  runnerform validate
  runnerform -f fleet.kdl --host ci-01 validate
  runnerform validate --json | jq '.problems[] | \"\\(.file):\\(.line): \\(.message)\"'";

const PLAN_EXAMPLES: &str = "\
Examples:
  runnerform plan
  runnerform plan --offline --target build
  runnerform plan --detailed-exitcode --out plan.json   # exit 2 on drift; -out works too";

const APPLY_EXAMPLES: &str = "\
Examples:
  runnerform apply --yes --wait-online 5m
  runnerform apply plan.json
  curl -s https://example.com/runners.kdl | runnerform -f - apply --yes -c /etc/gitlab-runner/config.toml";

const IMPORT_EXAMPLES: &str = "\
Examples:
  runnerform import -c /etc/gitlab-runner/config.toml -o runners.kdl
  GITLAB_TOKEN=... runnerform import --output runners.kdl --force";

const SHOW_EXAMPLES: &str = "\
Examples:
  runnerform plan --out plan.json && runnerform show plan.json
  runnerform show plan.json --json | jq '.runners[] | select(.action != \"no_change\") | .name'";

const STATUS_EXAMPLES: &str = "\
Examples:
  runnerform status
  runnerform status --json | jq -r '.[] | select(.status != \"online\") | .name'";

const SIM_EXAMPLES: &str = "\
Examples:
  runnerform sim --listen 127.0.0.1:8080 --state sim.json
  runnerform sim | head -1   # {\"url\": \"http://127.0.0.1:PORT\", \"admin_token\": \"glpat-...\"}";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  runnerform completions bash > /etc/bash_completion.d/runnerform
  runnerform completions zsh > \"${fpath[1]}/_runnerform\"
  runnerform completions fish > ~/.config/fish/completions/runnerform.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  runnerform man > /usr/local/share/man/man1/runnerform.1
  runnerform man | man -l -";

#[derive(Debug, Parser)]
#[command(
    name = "runnerform",
    version = VERSION,
    long_version = LONG_VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    next_help_heading = "Global options"
)]
pub struct Cli {
    /// The KDL file that declares the runners; `-` reads it from stdin
    #[arg(
        short = 'f',
        long = "file",
        env = "RUNNERFORM_FILE",
        default_value = "runners.kdl",
        global = true,
        value_name = "FILE"
    )]
    pub file: PathBuf,

    /// gitlab-runner's config.toml (overrides the path in the KDL file); `-c`/`--config` and
    /// CONFIG_FILE as gitlab-runner spells them
    #[arg(
        short = 'c',
        long,
        visible_alias = "config",
        env = "CONFIG_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub config_toml: Option<PathBuf>,

    /// The host of a fleet file to act on: its `host "NAME"` block and everything shared
    /// (default: this machine's hostname; `validate` checks every host unless given)
    #[arg(long, env = "RUNNERFORM_HOST", global = true, value_name = "NAME")]
    pub host: Option<String>,

    /// Never colour output (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Say more (repeat for more detail)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the KDL file only: syntax, keys, types, values. No network, no config.toml.
    ///
    /// Every problem in the file and the files it includes is reported at once, with its
    /// line and column. A secret reference (env var or file) that cannot be resolved here is
    /// a warning: the host that applies the file may have it. Exits 0 when the file is valid
    /// (warnings allowed), 1 otherwise.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(commands::validate::Args),

    /// Show, runner by runner, what apply would change.
    ///
    /// Each declared runner gets one action with its reason (create, adopt, update, delete…)
    /// and its key-level changes, followed by a unified diff of config.toml, the service's steps
    /// (install, start, restart… with a diff of its definition file) and a summary.
    /// Entries that runnerform does not manage are listed and left alone. Tokens are masked
    /// everywhere. With --detailed-exitcode: 0 no changes, 2 changes pending, 1 error.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(commands::plan::Args),

    /// Converge config.toml, GitLab and the service to the KDL file, after showing the plan.
    ///
    /// Asks for confirmation on a terminal; refuses without --yes when stdin is not one.
    /// config.toml is replaced atomically under a lock (mode and owner kept), after checking
    /// that nobody changed it since the plan was made; every token GitLab hands out is on disk
    /// before the next request. The service steps come last; runner changes never restart it
    /// (gitlab-runner reloads config.toml itself). With nothing to do, nothing is written.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(commands::apply::Args),

    /// Show a plan saved with `plan --out`, as `plan` showed it.
    ///
    /// Reads only the file: neither the KDL file, config.toml nor GitLab is needed. The
    /// config.toml diff is the one saved with the plan (tokens masked). A file that is not a
    /// plan saved by this runnerform is refused (exit 1).
    #[command(after_help = SHOW_EXAMPLES)]
    Show(commands::show::Args),

    /// Write a KDL file that describes an existing config.toml (from --config-toml, else
    /// gitlab-runner's default path).
    ///
    /// Every runner with all its keys, the global keys, and settings that every runner repeats
    /// in `defaults`. Tokens and secrets are never copied: each becomes an env var reference,
    /// listed at the top of the file. Planned against the same host, the file adopts every
    /// runner and changes nothing. With a GitLab access token (--token-env, default
    /// GITLAB_TOKEN) each runner's scope and GitLab attributes are recorded too.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(commands::import::Args),

    /// What GitLab says of each declared runner: id, status (online, offline, stale,
    /// never_contacted), paused, last contact, the hosts running it, token expiry.
    ///
    /// Read-only: it changes nothing on GitLab or on disk.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(commands::status::Args),

    /// Serve a local stand-in for GitLab's runner API, for trying provisioning scripts safely.
    ///
    /// A stateful GitLab simulator on 127.0.0.1: it creates, registers, lists, updates and
    /// deletes runners as GitLab's REST API v4 does (same status codes, token prefixes,
    /// scopes and roles, pagination), starting with an administrator and the groups `acme`,
    /// `acme/platform` and projects `acme/app`, `acme/web`, `acme/platform/infra`. Nothing
    /// reaches a real GitLab.
    ///
    /// The first line on stdout is one JSON object, {"url": "...", "admin_token": "glpat-..."}:
    /// the simulator's own throwaway administrator token is printed on purpose, as the one
    /// token runnerform ever shows, so that scripts can use it. Control endpoints under
    /// URL/-/sim/ add users, tokens and projects, inject latency and failures, change runners
    /// behind a client's back, move the clock, and show the request log. Serves until SIGINT or
    /// SIGTERM; -v prints each request (tokens masked) on stderr.
    #[command(after_help = SIM_EXAMPLES)]
    Sim(commands::sim::Args),

    /// Print a shell completion script for bash, zsh, fish, powershell or elvish.
    ///
    /// The script completes subcommands, flags and their values; install it where the shell
    /// looks for completions (see the examples).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(commands::completions::Args),

    /// Print runnerform's manual page (roff), for `man`.
    #[command(after_help = MAN_EXAMPLES)]
    Man(commands::man::Args),
}

/// The whole command-line definition, for completions and the manual page.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let definition = command();
    let takes_value = |flag: &str| takes_value(&definition, flag);
    let args = match terraform::translate(std::env::args_os().collect(), &takes_value) {
        Ok(args) => args,
        Err(p) => {
            let ui = Ui::plain();
            ui.problem(&p);
            return Exit::Error.into();
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            // Usage errors are errors like any other: exit 1. Code 2 means drift.
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Success,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Exit::Error,
                _ => Exit::Error,
            }
            .into();
        }
    };
    run(cli).into()
}

/// Whether `flag` (`-f`, `--out`) consumes the next argument in any command.
fn takes_value(cmd: &clap::Command, flag: &str) -> bool {
    let matches = |a: &clap::Arg| {
        let long = flag.strip_prefix("--").is_some_and(|l| {
            a.get_long() == Some(l) || a.get_all_aliases().is_some_and(|al| al.contains(&l))
        });
        let short = flag.strip_prefix('-').is_some_and(|s| {
            let mut c = s.chars();
            matches!((c.next(), c.next()), (Some(ch), None) if a.get_short() == Some(ch))
        });
        (long || short) && a.get_action().takes_values()
    };
    cmd.get_arguments().any(matches) || cmd.get_subcommands().any(|s| takes_value(s, flag))
}

pub fn run(cli: Cli) -> Exit {
    let ui = Ui::new(&cli);
    match &cli.command {
        Command::Validate(args) => commands::validate::run(&cli, &ui, args),
        Command::Plan(args) => commands::plan::run(&cli, &ui, args),
        Command::Apply(args) => commands::apply::run(&cli, &ui, args),
        Command::Show(args) => commands::show::run(&ui, args),
        Command::Status(args) => commands::status::run(&cli, &ui, args),
        Command::Import(args) => commands::import::run(&cli, &ui, args),
        Command::Sim(args) => commands::sim::run(&cli, &ui, args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
    }
}
