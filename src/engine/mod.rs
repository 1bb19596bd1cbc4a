//! The engine: plan and apply as a library, with no terminal I/O.
//!
//! [`plan`] gathers the views (config.toml and the ownership record, GitLab unless offline,
//! the OS service) and plans; [`apply`] carries out exactly the plan's steps and reports each
//! as an [`Event`]; [`wait_online`], [`status`] and [`check_saved`] complete what the command
//! line offers. The command line parses flags, calls these and renders what they return; a
//! test or another front end does the same without building an argv.
//!
//! ```no_run
//! use runnerform::engine::{self, Options};
//! use runnerform::desired::{self, RefCheck};
//!
//! let loaded = desired::read(std::path::Path::new("runners.kdl"), RefCheck::Require);
//! let desired = loaded.desired.expect("a valid file");
//! let planned = engine::plan(desired, &Options::default()).expect("a plan");
//! for runner in &planned.plan.runners {
//!     println!("{}: {}", runner.name, runner.action.word());
//! }
//! let outcome = engine::apply(&planned, &engine::ApplyOptions::default(), &mut |_| {});
//! ```

mod gather;
mod preflight;
mod saved;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use crate::apply::{Event, Failure, Outcome};
use crate::desired::Desired;
use crate::diag::Problem;
use crate::local::expand::Environment;
use crate::plan::Plan;
use crate::views::{self, LocalViews};
pub use gather::{Online, client_for, gitlab_node, system_id};
pub use saved::{SavedPlan, check_saved, read_plan};
pub use status::status;

/// How to plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plan against config.toml and the service only, without GitLab.
    pub offline: bool,
    /// Limit the plan to these runners (the base name of `count=` replicas selects all).
    pub targets: Vec<String>,
    /// config.toml, overriding the KDL file's `config` node.
    pub config_toml: Option<PathBuf>,
    /// Most requests to GitLab in flight at once; fewer while GitLab throttles or slows down.
    pub concurrency: usize,
    /// Rotate tokens that expire within this many seconds.
    pub rotate_within: u64,
    /// Also verify every entry's token (`POST /runners/verify`).
    pub verify_tokens: bool,
    /// Delete entries runnerform does not manage.
    pub delete_unmanaged: bool,
    /// What `$VAR` in config.toml expands to.
    pub env: Environment,
    /// Now, in Unix seconds (token expiry is measured from it).
    pub now: Option<i64>,
    /// How long to wait for the lock when an interrupted apply's journal must be finished.
    pub lock_wait: Duration,
    /// Told of every request to GitLab, during the plan and the apply of what it planned.
    pub observer: Option<Arc<dyn Observer>>,
}

/// What a front end learns while the engine talks to GitLab: every request (through
/// [`crate::remote::Observer`]) and, before a plan reads GitLab, about how many reads it
/// will make, so that progress can be shown as done/total.
pub trait Observer: crate::remote::Observer {
    /// About `more` requests follow (an estimate: retries, pages and answers that ask for
    /// more reads can add some).
    fn reading(&self, _more: usize) {}
}

impl Default for Options {
    fn default() -> Self {
        Options {
            offline: false,
            targets: Vec::new(),
            config_toml: None,
            concurrency: crate::remote::pace::DEFAULT_CONCURRENCY,
            rotate_within: 86_400,
            verify_tokens: false,
            delete_unmanaged: false,
            env: Environment::from_process(),
            now: None,
            lock_wait: Duration::from_secs(60),
            observer: None,
        }
    }
}

/// A plan and everything apply needs to carry it out.
pub struct Planned {
    pub desired: Desired,
    pub views: LocalViews,
    pub plan: Plan,
    pub online: Option<Online>,
    /// The declared service, when the plan covers it.
    pub service: Option<crate::service::Spec>,
    pub env: Environment,
    /// What the user should know that is not a problem: an interrupted apply's journal that
    /// was finished before planning, for example.
    pub notes: Vec<String>,
}

/// Plans the desired state against this host, and against GitLab unless offline. Errors are
/// diagnostics (several when several runners cannot be planned); nothing is changed.
pub fn plan(desired: Desired, opts: &Options) -> Result<Planned, Vec<Problem>> {
    let one = |p: Problem| vec![p];
    let path = views::config_path(opts.config_toml.as_deref(), &desired);
    let notes = recover(&path, opts.lock_wait).map_err(one)?;
    let views = views::gather_local(&desired, &path).map_err(one)?;
    let online = if opts.offline {
        None
    } else {
        let mut online = gather::connect(
            &desired,
            &views,
            &opts.env,
            opts.concurrency,
            opts.verify_tokens,
            opts.observer.as_ref(),
        )
        .map_err(one)?;
        online.remote.now = opts.now.unwrap_or_else(crate::time::now_unix);
        online.remote.rotate_within = opts.rotate_within as i64;
        Some(online)
    };
    let sid = system_id(&path);
    let mut plan = crate::plan::plan(&crate::plan::Inputs {
        desired: &desired,
        local: &views.local,
        state: &views.state,
        state_text: views.state_text.as_deref(),
        secrets: &views.secrets,
        remote: online.as_ref().map(|o| &o.remote),
        targets: &opts.targets,
        delete_unmanaged: opts.delete_unmanaged,
        env: &opts.env,
        system_id: sid.as_deref(),
    })
    .map_err(one)?;
    if let Some(online) = &online {
        let problems = preflight::check(&desired, &plan, online).map_err(one)?;
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    // A plan limited to some runners leaves the service alone.
    let service = if opts.targets.is_empty() {
        plan_service(&desired, &path, &mut plan)?
    } else {
        None
    };
    Ok(Planned {
        desired,
        views,
        plan,
        online,
        service,
        env: opts.env.clone(),
        notes,
    })
}

/// Finishes what an apply that stopped (a crash, a kill) left in its journal, so that the
/// plan is made from config.toml as that apply left it, with no token lost.
fn recover(config_toml: &std::path::Path, lock_wait: Duration) -> Result<Vec<String>, Problem> {
    if !crate::local::journal::path_for(config_toml).exists() {
        return Ok(Vec::new());
    }
    let _lock = crate::local::write::lock(config_toml, lock_wait, || {})?;
    Ok(crate::local::journal::recover(config_toml)?
        .map(|r| {
            vec![format!(
                "an earlier apply stopped before it finished: its journal ({} records: {} \
                 credentials, {} deletes) was written into {} and the ownership record",
                r.records,
                r.credentials,
                r.deletes,
                config_toml.display()
            )]
        })
        .unwrap_or_default())
}

/// Observes the declared service and adds its steps to the plan; checks what they need.
fn plan_service(
    desired: &Desired,
    config_toml: &std::path::Path,
    plan: &mut Plan,
) -> Result<Option<crate::service::Spec>, Vec<Problem>> {
    let one = |p: Problem| vec![p];
    let Some(spec) =
        crate::service::spec(desired, config_toml, std::path::Path::new("/")).map_err(one)?
    else {
        return Ok(None);
    };
    let view = crate::service::observe::observe(&spec).map_err(one)?;
    let sp = crate::plan::service::plan(&spec, &view, &plan.globals);
    let problems = crate::service::control::preflight(&spec, &sp, &desired.sources);
    if !problems.is_empty() {
        return Err(problems);
    }
    plan.set_service(sp);
    Ok(Some(spec))
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How long to wait for another runnerform applying to the same config.toml.
    pub lock_wait: Duration,
    /// Runners applied at the same time (each runner's steps stay in order).
    pub concurrency: usize,
    /// When set (say, by a SIGINT handler), no further step starts: the steps in flight
    /// finish and are recorded, and apply fails with "interrupted".
    pub interrupt: Option<&'static AtomicBool>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            lock_wait: Duration::from_secs(60),
            concurrency: 32,
            interrupt: None,
        }
    }
}

/// Carries out the plan's steps in order, then the service's. Each step is reported as an
/// [`Event`]; a failure says what was done and what was not.
pub fn apply(
    planned: &Planned,
    opts: &ApplyOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, Failure> {
    let plan = &planned.plan;
    let cx = crate::apply::Context {
        desired: &planned.desired,
        gitlab: planned.online.as_ref().map(|o| (&o.client, &o.runtime)),
        env: &planned.env,
        lock_wait: opts.lock_wait,
        system_id: system_id(std::path::Path::new(&plan.config_toml)),
        concurrency: opts.concurrency,
        interrupt: opts.interrupt,
    };
    let mut outcome = crate::apply::execute(plan, &cx, on_event)?;
    if let (Some(sp), Some(spec)) = (&plan.service, &planned.service)
        && sp.is_change()
    {
        let total = outcome.steps_total + sp.steps.len();
        let mut index = outcome.steps_total;
        let mut progress = |line: &str| {
            index += 1;
            on_event(Event::Finished {
                index: index.min(total),
                total,
                runner: format!("service {}", sp.name),
                step: line.to_string(),
                detail: String::new(),
            });
        };
        if let Err(problem) = crate::service::control::execute(spec, sp, &mut progress) {
            return Err(Failure {
                problem,
                outcome,
                not_done: vec![(format!("service {}", sp.name), "the service steps".into())],
            });
        }
        outcome.service_steps = sp.steps.len();
        outcome.steps_total = total;
        outcome.steps_done += sp.steps.len();
    }
    Ok(outcome)
}

/// A declared runner that did not come online, and what was last seen of it.
pub type Late = Vec<(String, String)>;

/// Why waiting for the runners failed.
#[derive(Debug)]
pub enum WaitError {
    /// Nothing to wait with: offline, or a runner without a GitLab id.
    Unusable(Box<Problem>),
    /// These runners did not come online in time.
    Late(Late),
}

/// Polls GitLab until every runner the plan keeps is online with a runner manager for this
/// host, or `timeout` passes. `on_online` is told each runner as it comes online; `waiting`
/// once with the number of runners waited for.
pub fn wait_online(
    planned: &Planned,
    timeout: Duration,
    waiting: &mut dyn FnMut(usize),
    on_online: &mut dyn FnMut(&str),
) -> Result<(), WaitError> {
    let Some(online) = &planned.online else {
        return Err(WaitError::Unusable(Box::new(Problem::error(
            "offline",
            "--wait-online asks GitLab whether the runners are online, which --offline rules out",
        ))));
    };
    let plan = &planned.plan;
    let path = std::path::Path::new(&plan.config_toml);
    // The ids are those config.toml holds now, after apply wrote it; the one matcher finds
    // each declared runner's entry.
    let local = crate::local::read(path).map_err(|p| WaitError::Unusable(Box::new(p)))?;
    let (state, _) =
        crate::local::state::read(path).map_err(|p| WaitError::Unusable(Box::new(p)))?;
    let entries = crate::plan::matcher::entries(&local, &planned.env);
    let mut matcher = crate::plan::matcher::Matcher::new(&entries);
    let mut list = Vec::new();
    let mut missing = Vec::new();
    let planned_names: std::collections::HashSet<&str> =
        plan.runners.iter().map(|p| p.name.as_str()).collect();
    let owned = crate::plan::matcher::Owned::new(&state);
    for r in &planned.desired.runners {
        let name = &r.name.value;
        if !planned_names.contains(name.as_str()) {
            continue;
        }
        let managed = owned.get(name);
        match matcher.claim(managed, name, None) {
            Ok(Some(e)) if e.id > 0 => list.push(crate::remote::wait::Waiting {
                name: name.clone(),
                id: e.id,
            }),
            _ => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(WaitError::Unusable(Box::new(Problem::error(
            "wait_online",
            format!(
                "cannot wait for {}: config.toml has no GitLab id for {}",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
        ))));
    }
    waiting(list.len());
    let sid = || system_id(path);
    online
        .runtime
        .block_on(crate::remote::wait::wait_online(
            &online.client,
            list,
            &sid,
            timeout,
            Duration::from_millis(500),
            on_online,
        ))
        .map_err(WaitError::Late)
}
