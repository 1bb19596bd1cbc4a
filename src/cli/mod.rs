//! The command line: argument parsing, output, and one module per command.
//!
//! Commands return an [`Exit`]; only this layer writes to the terminal.

mod commands;
mod host;
mod plan_view;
mod planning;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Exit;
pub use ui::Ui;

const ABOUT: &str = "Config-as-code for GitLab Runner hosts";

const LONG_ABOUT: &str = "\
Config-as-code for GitLab Runner hosts.

The runners a host should have are declared in a KDL file (default ./runners.kdl). runnerform
checks that file, compares it with gitlab-runner's config.toml, with GitLab and with the OS
service that runs gitlab-runner, and applies the difference without an interactive prompt.

Exit codes: 0 success; 1 error (bad input, failed check; nothing was changed by the failed
step); 2 only with `plan --detailed-exitcode`: changes are pending.";

#[derive(Debug, Parser)]
#[command(name = "runnerform", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The KDL file that declares the runners
    #[arg(
        short = 'f',
        long = "file",
        env = "RUNNERFORM_FILE",
        default_value = "runners.kdl",
        global = true,
        value_name = "FILE"
    )]
    pub file: PathBuf,

    /// gitlab-runner's config.toml (overrides the path in the KDL file)
    #[arg(long, global = true, value_name = "PATH")]
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
    Validate(commands::validate::Args),

    /// Show, runner by runner, what apply would change.
    ///
    /// Each declared runner gets one action with its reason (create, adopt, update, delete…)
    /// and its key-level changes, followed by a unified diff of config.toml, the service's steps
    /// (install, start, restart… with a diff of its definition file) and a summary.
    /// Entries that runnerform does not manage are listed and left alone. Tokens are masked
    /// everywhere. With --detailed-exitcode: 0 no changes, 2 changes pending, 1 error.
    Plan(commands::plan::Args),

    /// Converge config.toml, GitLab and the service to the KDL file, after showing the plan.
    ///
    /// Asks for confirmation on a terminal; refuses without --yes when stdin is not one.
    /// config.toml is replaced atomically under a lock (mode and owner kept), after checking
    /// that nobody changed it since the plan was made; every token GitLab hands out is on disk
    /// before the next request. The service steps come last; runner changes never restart it
    /// (gitlab-runner reloads config.toml itself). With nothing to do, nothing is written.
    Apply(commands::apply::Args),

    /// Write a KDL file that describes an existing config.toml (from --config-toml, else
    /// gitlab-runner's default path).
    ///
    /// Every runner with all its keys, the global keys, and settings that every runner repeats
    /// in `defaults`. Tokens and secrets are never copied: each becomes an env var reference,
    /// listed at the top of the file. Planned against the same host, the file adopts every
    /// runner and changes nothing. With a GitLab access token (--token-env, default
    /// GITLAB_TOKEN) each runner's scope and GitLab attributes are recorded too.
    Import(commands::import::Args),

    /// What GitLab says of each declared runner: id, status (online, offline, stale,
    /// never_contacted), paused, last contact, the hosts running it, token expiry.
    ///
    /// Read-only: it changes nothing on GitLab or on disk.
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
    Sim(commands::sim::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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

pub fn run(cli: Cli) -> Exit {
    let ui = Ui::new(&cli);
    match &cli.command {
        Command::Validate(args) => commands::validate::run(&cli, &ui, args),
        Command::Plan(args) => commands::plan::run(&cli, &ui, args),
        Command::Apply(args) => commands::apply::run(&cli, &ui, args),
        Command::Status(args) => commands::status::run(&cli, &ui, args),
        Command::Import(args) => commands::import::run(&cli, &ui, args),
        Command::Sim(args) => commands::sim::run(&cli, &ui, args),
    }
}
