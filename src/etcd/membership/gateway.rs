//! The gateway follows the voting members' client URLs.

use super::*;
use crate::etcd::Say;
use crate::etcd::conn::{self, Conn};
use crate::etcd::programs::Programs;
use crate::etcd::programs::{is_up, members, restart};

/// Point the gateway at the voting members' client URLs; restart it when they changed.
pub(crate) async fn sync_gateway(
    ctl: &impl Programs,
    say: Say<'_>,
    conn: &mut Conn,
) -> anyhow::Result<()> {
    let local = members(ctl).await?;
    let Some(gw) = &local.gateway else {
        return Ok(());
    };
    let list = match conn.list().await {
        Ok(l) => l,
        Err(e) => {
            say(&format!(
                "warning: gateway endpoints not checked ({e}); check {}",
                gw.env_file
            ));
            return Ok(());
        }
    };
    let mut want: Vec<String> = list
        .iter()
        .filter(|m| m.voter())
        .filter_map(|m| m.client_urls.first())
        .map(|u| conn::host_port(u).to_string())
        .collect();
    // Keep the configured order for endpoints that stay.
    want.sort_by_key(|e| {
        gw.endpoints
            .iter()
            .position(|g| g == e)
            .unwrap_or(usize::MAX)
    });
    if want.is_empty() {
        return Ok(());
    }
    let mut have = gw.endpoints.clone();
    have.sort();
    let mut sorted = want.clone();
    sorted.sort();
    if have == sorted {
        say(&format!(
            "gateway {}: endpoints unchanged ({})",
            gw.program,
            gw.endpoints.join(",")
        ));
        return Ok(());
    }
    let endpoints = want.join(",");
    learn(
        say,
        &gw.env_file,
        &gw.runtime_file,
        &[("endpoints", &endpoints)],
        "gateway sync",
    )?;
    if is_up(gw.state) {
        restart(ctl, say, &gw.program).await?;
    } else {
        say(&format!(
            "gateway {} is not running; it uses the new endpoints when started",
            gw.program
        ));
    }
    Ok(())
}
