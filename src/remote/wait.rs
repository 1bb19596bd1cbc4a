//! `apply --wait-online`: polling GitLab until the runners this host declares have contacted
//! it from this host.

use std::time::{Duration, Instant};

use super::Client;

/// A runner to wait for: its declared name and GitLab id.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub name: String,
    pub id: i64,
}

/// Waits until every runner is online with a runner manager for this host's system id
/// (`system_id` is asked again on each round: gitlab-runner writes it when it first starts).
/// On timeout, returns each runner still waited for with what was last seen of it.
pub async fn wait_online(
    client: &Client,
    runners: Vec<Waiting>,
    system_id: &dyn Fn() -> Option<String>,
    timeout: Duration,
    interval: Duration,
    on_online: &mut dyn FnMut(&str),
) -> Result<(), Vec<(String, String)>> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(Waiting, String)> = runners
        .into_iter()
        .map(|w| (w, "not asked yet".to_string()))
        .collect();
    loop {
        let sid = system_id();
        let mut still = Vec::new();
        for (w, _) in pending {
            match seen(client, &w, sid.as_deref()).await {
                Ok(()) => on_online(&w.name),
                Err(why) => still.push((w, why)),
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() + interval > deadline {
            return Err(pending.into_iter().map(|(w, why)| (w.name, why)).collect());
        }
        tokio::time::sleep(interval).await;
    }
}

/// `Ok` when the runner is online from this host; otherwise why not.
async fn seen(client: &Client, w: &Waiting, system_id: Option<&str>) -> Result<(), String> {
    let r = client.runner(w.id).await.map_err(|e| e.to_string())?;
    if r.status != "online" {
        return Err(format!("GitLab says it is {}", r.status));
    }
    let Some(sid) = system_id else {
        return Err(
            "this host has no .runner_system_id yet: gitlab-runner has not run here".into(),
        );
    };
    let managers = client.managers(w.id).await.map_err(|e| e.to_string())?;
    if managers.iter().any(|(s, st)| s == sid && st == "online") {
        Ok(())
    } else {
        Err(format!("online, but not from this host ({sid})"))
    }
}
