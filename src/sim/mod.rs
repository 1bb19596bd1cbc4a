//! A stateful GitLab simulator for the runner endpoints of the REST API v4, served over real
//! HTTP on a local address.
//!
//! It follows `reference/gitlab-api.md`: token prefixes, scopes and roles, status codes and
//! error bodies, tag replacement, pagination, runner managers, status from the clock, 410 for
//! disabled legacy registration. Tests start one in-process with [`Simulator::start`];
//! `runnerform sim` serves one for people trying a provisioning script. Both are steered
//! through the same control surface: methods on [`Simulator`] and HTTP endpoints under
//! `/-/sim/` (see [`control`]).
//!
//! Nothing here is shared with runnerform's GitLab client: the simulator is written from the
//! reference on its own, so the two sides check each other.

pub mod api;
pub mod auth;
pub mod clock;
pub mod control;
pub mod entities;
pub mod error;
pub mod faults;
pub mod observe;
pub mod pagination;
pub mod params;
pub mod persist;
pub mod routes;
pub mod server;
pub mod state;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use control::{MemberOf, RegistrationScope, RunnerEdit, RunnerSnapshot};
pub use faults::{Fault, FaultKind, Latency};
pub use observe::LoggedRequest;
pub use state::{Role, RunnerType, Settings};
pub use throttle::RateLimit;

use faults::Faults;
use observe::{CHANGED, RequestLog};
use state::State;

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Save the state here after every change, and start from it when it exists.
    pub state_file: Option<PathBuf>,
    /// Allow legacy registration with registration tokens (`POST /runners`). Off, as on
    /// GitLab 17.0 and later, unless asked for.
    pub legacy_registration: bool,
    /// Print one line per API request on stderr (tokens masked).
    pub echo_requests: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            legacy_registration: false,
            echo_requests: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(String),
    #[error("cannot start the simulator: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Control(String),
}

/// What the server tasks and the handle share.
pub struct Shared {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    log: Mutex<RequestLog>,
    limiter: Mutex<throttle::Limiter>,
    workers: Mutex<throttle::Workers>,
    /// API requests arrived and not yet answered (waiting for a worker included).
    in_flight: std::sync::atomic::AtomicU32,
    persist: Option<PathBuf>,
    echo_requests: bool,
}

/// Locks, carrying on after a panic elsewhere: the simulator's data stays usable for the
/// test that is reporting the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Runs `f` on the state. When it changed something, the change is saved (with
    /// `--state`) and the request in progress is logged as having changed state.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = lock(&self.state);
        let before = st.generation;
        let out = f(&mut st);
        if st.generation != before {
            let _ = CHANGED.try_with(|c| c.set(true));
            if let Some(path) = &self.persist
                && let Err(e) = persist::save(path, &st)
            {
                eprintln!("runnerform sim: cannot save {}: {e}", path.display());
            }
        }
        out
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Starts a simulator on its own thread and Tokio runtime, so it serves the same way
    /// from a plain `#[test]`, an async test, or the command line.
    ///
    /// ```
    /// use runnerform::sim::{MemberOf, Role, SimOptions, Simulator};
    ///
    /// let sim = Simulator::start(SimOptions::default()).unwrap();
    /// assert!(sim.url().starts_with("http://127.0.0.1:"));
    /// // A Maintainer of acme/app whose token may only create runners.
    /// let (user, token) = sim.user_with_token("ci", &["create_runner"]).unwrap();
    /// let app = sim.project_id("acme/app").unwrap();
    /// sim.add_member(user, MemberOf::Project(app), Role::Maintainer).unwrap();
    /// assert!(token.starts_with("glpat-"));
    /// ```
    pub fn start(opts: SimOptions) -> Result<Simulator, SimError> {
        let mut st = match &opts.state_file {
            Some(path) => persist::load(path)
                .map_err(SimError::State)?
                .unwrap_or_else(State::seeded),
            None => State::seeded(),
        };
        st.settings.legacy_registration = opts.legacy_registration;
        if let Some(path) = &opts.state_file {
            persist::save(path, &st)
                .map_err(|e| SimError::State(format!("cannot write {}: {e}", path.display())))?;
        }

        let listener =
            std::net::TcpListener::bind(opts.listen).map_err(|source| SimError::Bind {
                addr: opts.listen,
                source,
            })?;
        let bind_err = |source| SimError::Bind {
            addr: opts.listen,
            source,
        };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;

        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(RequestLog::default()),
            limiter: Mutex::new(throttle::Limiter::default()),
            workers: Mutex::new(throttle::Workers::default()),
            in_flight: std::sync::atomic::AtomicU32::new(0),
            persist: opts.state_file.clone(),
            echo_requests: opts.echo_requests,
        });
        let router = routes::router(shared.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("runnerform-sim")
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let (tx, rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("runnerform-sim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            server::serve(l, router, rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(SimError::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SimError::Runtime(e)),
            Err(_) => {
                return Err(SimError::Runtime(std::io::Error::other(
                    "the simulator thread stopped while starting",
                )));
            }
        }
        Ok(Simulator {
            shared,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, the GitLab URL to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seeded administrator's personal access token (scope `api`).
    pub fn admin_token(&self) -> String {
        self.shared.with(|st| st.admin_token().to_string())
    }

    pub fn admin_user_id(&self) -> u64 {
        self.shared.with(|st| st.admin_user_id)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}
