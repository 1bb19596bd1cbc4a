//! What `plan` and `apply` share: reading the desired state, gathering the views (config.toml,
//! the ownership record and, online, GitLab), planning.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Cli, Ui};
use crate::desired::{self, Desired, RefCheck};
use crate::diag::Problem;
use crate::exit::Exit;
use crate::plan::{self, Plan};
use crate::remote::{Client, ClientOptions, RemoteView, refresh};
use crate::views::{self, LocalViews};

/// Reads and checks the KDL file; prints its problems. `Err` when it has errors.
pub fn load_desired(cli: &Cli, ui: &Ui, refs: RefCheck) -> Result<Desired, Exit> {
    let host = crate::cli::host::this_host(cli);
    let loaded = desired::read_for(&cli.file, refs, desired::HostChoice::One(&host));
    ui.problems(&loaded.problems);
    loaded.desired.ok_or_else(|| {
        eprintln!(
            "{}: {} found; nothing was planned",
            cli.file.display(),
            crate::cli::ui::plural(loaded.problems.errors(), "error")
        );
        Exit::Error
    })
}

/// GitLab, as far as an online plan and its apply need it.
pub struct Online {
    pub client: Client,
    pub remote: RemoteView,
    pub runtime: tokio::runtime::Runtime,
}

pub struct Planned {
    pub desired: Desired,
    pub views: LocalViews,
    pub plan: Plan,
    pub online: Option<Online>,
    /// The declared service, when the plan covers it.
    pub service: Option<crate::service::Spec>,
}

/// The flags `plan` and `apply` share.
#[derive(Debug, clap::Args)]
pub struct PlanFlags {
    /// Work on config.toml (and the service) only, without calling GitLab. Actions that need
    /// GitLab (create, replace…) are shown as pending and not applied. Without it, runnerform
    /// asks GitLab about every runner (the access token from the gitlab node is required).
    #[arg(long)]
    pub offline: bool,

    /// Limit to this runner (repeatable; the name of a `count=` runner selects all its
    /// replicas)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,

    /// How many requests to GitLab may be in flight at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,

    /// Rotate runner tokens that expire within this long (seconds or a duration such as 12h)
    #[arg(long, value_name = "DURATION", default_value = "24h",
          value_parser = crate::duration::parse_secs)]
    pub rotate_within: u64,

    /// Also check every entry's token with GitLab (`POST /runners/verify`), to find tokens
    /// reset elsewhere. Off by default because GitLab records a runner manager for each check.
    #[arg(long)]
    pub verify_tokens: bool,

    /// Delete runners in config.toml that are neither declared nor managed by runnerform (on
    /// GitLab too), instead of leaving them alone
    #[arg(long)]
    pub delete_unmanaged: bool,
}

impl PlanFlags {
    pub fn options(&self) -> PlanOptions<'_> {
        PlanOptions {
            offline: self.offline,
            targets: &self.targets,
            config_toml: None,
            concurrency: self.concurrency,
            rotate_within: self.rotate_within,
            verify_tokens: self.verify_tokens,
            delete_unmanaged: self.delete_unmanaged,
        }
    }
}

/// How to plan.
pub struct PlanOptions<'a> {
    pub offline: bool,
    pub targets: &'a [String],
    /// config.toml named by a saved plan (overrides `--config-toml` and the KDL file).
    pub config_toml: Option<&'a std::path::Path>,
    pub concurrency: usize,
    pub rotate_within: u64,
    pub verify_tokens: bool,
    pub delete_unmanaged: bool,
}

/// Plans the whole desired state against the host, and against GitLab unless offline.
pub fn make_plan(cli: &Cli, ui: &Ui, opts: &PlanOptions) -> Result<Planned, Exit> {
    let offline = opts.offline;
    let refs = if offline {
        RefCheck::Settings
    } else {
        RefCheck::Require
    };
    let desired = load_desired(cli, ui, refs)?;
    let fail = |p: Problem| {
        ui.problem(&p);
        Exit::Error
    };
    let path: PathBuf =
        views::config_path(opts.config_toml.or(cli.config_toml.as_deref()), &desired);
    let views = views::gather_local(&desired, &path).map_err(fail)?;
    let online = if offline {
        None
    } else {
        let mut online =
            connect(ui, &desired, &views, opts.concurrency, opts.verify_tokens).map_err(fail)?;
        online.remote.now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        online.remote.rotate_within = opts.rotate_within as i64;
        Some(online)
    };
    let plan = plan::local::plan(&plan::local::Inputs {
        desired: &desired,
        local: &views.local,
        state: &views.state,
        state_text: views.state_text.as_deref(),
        secrets: &views.secrets,
        remote: online.as_ref().map(|o| &o.remote),
        targets: opts.targets,
        delete_unmanaged: opts.delete_unmanaged,
    })
    .map_err(fail)?;
    let mut plan = plan;
    // A plan limited to some runners leaves the service alone.
    let service = if opts.targets.is_empty() {
        plan_service(ui, &desired, &path, &mut plan)?
    } else {
        None
    };
    Ok(Planned {
        desired,
        views,
        plan,
        online,
        service,
    })
}

/// Observes the declared service and adds its steps to the plan; checks what they need.
fn plan_service(
    ui: &Ui,
    desired: &Desired,
    config_toml: &std::path::Path,
    plan: &mut Plan,
) -> Result<Option<crate::service::Spec>, Exit> {
    let fail = |p: Problem| {
        ui.problem(&p);
        Exit::Error
    };
    let Some(spec) =
        crate::service::spec(desired, config_toml, std::path::Path::new("/")).map_err(fail)?
    else {
        return Ok(None);
    };
    let view = crate::service::observe::observe(&spec).map_err(fail)?;
    let sp = plan::service::plan(&spec, &view, &plan.globals);
    let problems = crate::service::control::preflight(&spec, &sp, &desired.sources);
    if !problems.is_empty() {
        for p in &problems {
            ui.problem(p);
        }
        eprintln!("the service cannot be changed as planned; nothing was changed");
        return Err(Exit::Error);
    }
    plan.set_service(sp);
    Ok(Some(spec))
}

/// Checks the access token, then asks GitLab about every runner the plan is about.
fn connect(
    ui: &Ui,
    d: &Desired,
    views: &LocalViews,
    concurrency: usize,
    verify_tokens: bool,
) -> Result<Online, Problem> {
    let Some(g) = &d.gitlab else {
        return Err(
            Problem::error("no_gitlab", "the KDL file declares no GitLab instance")
                .help("add gitlab \"https://…\" { token env=\"GITLAB_TOKEN\" }, or pass --offline"),
        );
    };
    let Some(token_ref) = &g.token else {
        return Err(Problem::error("no_token", "the gitlab node has no access token")
            .at(&d.sources, g.loc, "no token")
            .help("add token env=\"GITLAB_TOKEN\" (a token with the api scope, or create_runner and manage_runner), or pass --offline"));
    };
    let (client, runtime) = client_for(d, g, token_ref)?;
    let mut q = plan::local::questions(d, &views.local, &views.state);
    let in_file: Vec<String> = views
        .local
        .runners()
        .iter()
        .map(|t| {
            t.get("name")
                .and_then(toml_edit::Item::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for r in &d.runners {
        let renamed_in_file = r
            .body
            .renamed_from
            .as_ref()
            .is_some_and(|o| in_file.contains(&o.value));
        if let Some(t) = &r.body.token
            && !in_file.contains(&r.name.value)
            && !renamed_in_file
        {
            q.adopt.push((r.name.value.clone(), views::resolve(d, t)?));
        }
    }
    q.system_id = system_id(&views.local.path);
    if verify_tokens {
        for t in views.local.runners() {
            let id = t
                .get("id")
                .and_then(toml_edit::Item::as_integer)
                .unwrap_or(0);
            let token = t
                .get("token")
                .and_then(toml_edit::Item::as_str)
                .unwrap_or("");
            if id > 0 && !token.is_empty() && !token.contains('$') {
                q.check_tokens.push((id, token.to_string()));
            }
        }
    }
    if ui.verbosity >= 1 {
        eprintln!(
            "Asking {} about {} runner(s)…",
            g.url.value,
            q.runner_ids.len() + q.tokens.len()
        );
    }
    let remote = runtime.block_on(async {
        check_token(&client, &g.url.value, !q.namespaces.is_empty()).await?;
        refresh(&client, q, concurrency).await.map_err(|e| {
            let a = crate::remote::advice::refresh(&g.url.value, &e);
            Problem::error("gitlab", a.message).help(a.hint)
        })
    })?;
    Ok(Online {
        client,
        remote,
        runtime,
    })
}

/// gitlab-runner's id for this host, from `.runner_system_id` beside config.toml.
pub fn system_id(config_toml: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(config_toml.parent()?.join(".runner_system_id")).ok()?;
    let id = text.trim();
    let valid = id.len() == 14
        && (id.starts_with("s_") || id.starts_with("r_"))
        && id[2..].chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| id.to_string())
}

/// A GitLab client and a runtime to drive it, from the gitlab node.
pub fn client_for(
    d: &Desired,
    g: &crate::desired::GitLab,
    token_ref: &crate::desired::SecretRef,
) -> Result<(Client, tokio::runtime::Runtime), Problem> {
    let token = views::resolve(d, token_ref)?;
    let client = Client::new(&ClientOptions {
        token: Some(token),
        // Relative to the KDL file, like secret files.
        ca_file: g.ca_file.as_ref().map(|c| {
            let base = d
                .sources
                .get(c.loc.file)
                .path
                .parent()
                .map(|p| p.to_path_buf());
            base.unwrap_or_default().join(&c.value)
        }),
        timeout: Duration::from_secs(g.timeout.as_ref().map_or(30, |t| t.value)),
        ..ClientOptions::new(&g.url.value)
    })
    .map_err(|e| Problem::error("gitlab", e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Problem::error("runtime", e.to_string()))?;
    Ok((client, runtime))
}

/// `needs_read`: group or project paths must be resolved to ids, which takes `read_api`.
async fn check_token(client: &Client, url: &str, needs_read: bool) -> Result<(), Problem> {
    let info = client.token_info().await.map_err(|e| {
        let a = crate::remote::advice::token_check(url, &e);
        Problem::error("gitlab_token", a.message).help(a.hint)
    })?;
    let has = |s: &str| info.scopes.iter().any(|x| x == s);
    let missing: Vec<&str> = if has("api") {
        Vec::new()
    } else {
        ["create_runner", "manage_runner", "read_api"]
            .into_iter()
            .filter(|s| *s != "read_api" || needs_read)
            .filter(|s| !has(s))
            .collect()
    };
    if !missing.is_empty() || !info.active {
        return Err(Problem::error(
            "gitlab_token",
            if info.active {
                format!(
                    "the access token lacks the {} scope{}",
                    missing.join(", "),
                    if missing.len() > 1 { "s" } else { "" }
                )
            } else {
                "the access token is not active".to_string()
            },
        )
        .help(format!(
            "runnerform needs a token with the api scope, or with create_runner and manage_runner (and read_api to look up groups and projects by path; or name them by id) (it has: {})",
            info.scopes.join(", ")
        )));
    }
    Ok(())
}
