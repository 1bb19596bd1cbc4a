//! `runnerform sim`: serve the GitLab simulator until interrupted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{Cli, Ui};
use crate::exit::Exit;
use crate::sim::{SimOptions, Simulator};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (the first output line says which).
    /// Anyone who can reach it can steer it through /-/sim/: keep it on 127.0.0.1
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Keep the simulated GitLab in FILE: loaded at start when it exists, saved after every
    /// change. It holds the simulator's tokens, so it is written with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Accept legacy registration tokens on POST /runners. Without it registration answers
    /// 410 Gone, as GitLab 17.0 and later do by default.
    #[arg(long)]
    pub legacy_registration: bool,
}

pub fn run(_cli: &Cli, ui: &Ui, args: &Args) -> Exit {
    let fail = |what: &dyn std::fmt::Display| {
        eprintln!("runnerform sim: {what}");
        Exit::Error
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    // Listen for the stop signals before announcing the address: a script that reads the
    // first line and at once sends SIGTERM must get a clean stop, not the default death.
    let stop = match runtime.block_on(async { StopSignal::listen() }) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for stop signals: {e}")),
    };
    let sim = match Simulator::start(SimOptions {
        listen: args.listen,
        state_file: args.state.clone(),
        legacy_registration: args.legacy_registration,
        echo_requests: ui.verbosity >= 1,
    }) {
        Ok(sim) => sim,
        Err(e) => return fail(&e),
    };

    // The one place runnerform prints a token on purpose: the simulator's own throwaway
    // administrator token, which a script needs to talk to it.
    let line = serde_json::json!({ "url": sim.url(), "admin_token": sim.admin_token() });
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        return Exit::Error;
    }
    drop(out);
    if ui.verbosity >= 0 {
        eprintln!(
            "GitLab simulator listening on {url} (control endpoints under {url}/-/sim); \
             stop it with Ctrl-C",
            url = sim.url()
        );
    }

    runtime.block_on(stop.wait());
    sim.stop();
    Exit::Success
}

/// SIGINT (Ctrl-C) or SIGTERM (what service managers and `kill` send).
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
