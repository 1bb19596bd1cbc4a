//! `runnerform import`: write a KDL file that describes an existing config.toml.

use std::path::PathBuf;

use crate::cli::ui::plural;
use crate::cli::{Cli, Ui};
use crate::diag::Problem;
use crate::exit::Exit;
use crate::import::{self, Answers, Options};
use crate::remote::{Client, ClientOptions, Questions, RemoteView, refresh};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the KDL file here instead of to stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace FILE when it exists
    #[arg(long)]
    pub force: bool,

    /// The env var that holds a GitLab access token. When it is set, each runner's scope
    /// (instance, group or project) and GitLab attributes are read from GitLab
    /// (`GET /runners/:id`) and written down; the `gitlab` node names it either way.
    #[arg(long, value_name = "VAR", default_value = "GITLAB_TOKEN")]
    pub token_env: String,
    /// The gitlab-runner service to describe, when it is installed (under the service
    /// manager that runs this machine)
    #[arg(long, value_name = "NAME", default_value = crate::service::DEFAULT_NAME)]
    pub service_name: String,
}

pub fn run(cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    match import(cli, ui, args) {
        Ok(()) => Exit::Success,
        Err(p) => {
            ui.problem(&p);
            Exit::Error
        }
    }
}

fn import(cli: &Cli, ui: &Ui, args: &Args) -> Result<(), Problem> {
    let path = cli
        .config_toml
        .clone()
        .unwrap_or_else(crate::local::default_path);
    // The file may be read from anywhere later: the path it names must not depend on where
    // import ran.
    let path = std::path::absolute(&path).unwrap_or(path);
    let local = crate::local::read(&path)?;
    if !local.exists() {
        return Err(Problem::error(
            "io",
            format!("cannot read {}: no such file", path.display()),
        )
        .help("name gitlab-runner's config.toml with --config-toml PATH"));
    }
    if let Some(out) = &args.output
        && out.exists()
        && !args.force
    {
        return Err(
            Problem::error("exists", format!("{} already exists", out.display()))
                .help("choose another --output, or pass --force to replace it"),
        );
    }
    let survey = import::survey(&local.document()?);
    let answers = ask_gitlab(ui, &survey, &args.token_env, &path)?;
    let config_path = path.display().to_string();
    let service = import::service::describe(&args.service_name, &path, |kind| {
        service_running(kind, &args.service_name)
    });
    let imported = import::render(
        &survey,
        &Options {
            config_path: &config_path,
            gitlab_token_env: &args.token_env,
            service: service.as_ref().map(|f| f.kdl.as_str()),
        },
        &answers,
    );
    if import::leaks_token(&imported.kdl) {
        return Err(Problem::error(
            "secret",
            "the imported file would contain a token; nothing was written",
        )
        .help("this is a bug in runnerform: please report it (without the file)"));
    }
    match &args.output {
        Some(out) => crate::local::write::replace(out, imported.kdl.as_bytes(), 0o644)?,
        None => print!("{}", imported.kdl),
    }
    let n = survey.entries.len() - imported.skipped.len();
    if ui.verbosity >= 0 {
        let to = args
            .output
            .as_ref()
            .map_or_else(|| "stdout".to_string(), |o| o.display().to_string());
        eprintln!(
            "Imported {} from {} to {to}.",
            plural(n, "runner"),
            path.display()
        );
        if let Some(f) = &service {
            eprintln!(
                "Described the service {} from {}.",
                args.service_name,
                f.path.display()
            );
        }
        for (name, why) in &imported.skipped {
            eprintln!("Not imported: {name}: {why}");
        }
        if !imported.env.is_empty() {
            let names: Vec<&str> = imported.env.iter().map(|(v, _)| v.as_str()).collect();
            eprintln!(
                "The file reads secrets from {}: {} (runner tokens only where config.toml \
                 lacks the runner).",
                plural(names.len(), "env var"),
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// Whether the service runs, as its manager says.
fn service_running(kind: crate::service::Kind, name: &str) -> bool {
    use service_manager::{ServiceManager, ServiceStatus, ServiceStatusCtx};
    let m = <dyn ServiceManager>::target(crate::service::observe::manager_kind(kind));
    let status = m.status(ServiceStatusCtx {
        label: service_manager::ServiceLabel {
            qualifier: None,
            organization: None,
            application: name.to_string(),
        },
    });
    matches!(status, Ok(ServiceStatus::Running))
}

/// Each imported runner's scope and attributes, when an access token is at hand.
fn ask_gitlab(
    ui: &Ui,
    survey: &import::Survey,
    token_env: &str,
    config_toml: &std::path::Path,
) -> Result<Answers, Problem> {
    let token = std::env::var(token_env).ok().filter(|t| !t.is_empty());
    let (Some(token), Some(url)) = (token, &survey.url) else {
        let why = match &survey.url {
            None => "the GitLab URL is unknown, so GitLab was not asked".to_string(),
            Some(_) => format!(
                "imported without a GitLab access token ({token_env} was not set); set it and \
                 import again to record the scope"
            ),
        };
        return Ok(Answers::NotAsked(why));
    };
    let (runner_ids, tokens) = survey.questions();
    if runner_ids.is_empty() && tokens.is_empty() {
        return Ok(Answers::Asked(RemoteView::default()));
    }
    if ui.verbosity >= 1 {
        eprintln!(
            "Asking {url} about {}…",
            plural(runner_ids.len() + tokens.len(), "runner")
        );
    }
    let client = Client::new(&ClientOptions {
        token: Some(token),
        ..ClientOptions::new(url)
    })
    .map_err(|e| Problem::error("gitlab", e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Problem::error("runtime", e.to_string()))?;
    let questions = Questions {
        runner_ids,
        tokens,
        // The same manager GitLab records when a plan verifies these tokens.
        system_id: crate::engine::system_id(config_toml),
        ..Questions::default()
    };
    let view = runtime
        .block_on(refresh(&client, questions, 8))
        .map_err(|e| {
            Problem::error("gitlab", format!("cannot read the runners from {url}: {e}")).help(
                format!(
                    "nothing was written; check the URL and the token in {token_env}, or unset \
                 it to import without GitLab's side"
                ),
            )
        })?;
    Ok(Answers::Asked(view))
}
