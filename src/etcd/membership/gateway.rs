//! The gateway follows the voting members' client URLs: at the end of every operation on
//! this host ([`sync_gateway`]), and from fild's liveness check for members that joined
//! through another host ([`add_missing`]).

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
    let mut want = voter_endpoints(&list);
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

/// The voting members' client endpoints (`host:port`), in the cluster's order. Unstarted
/// members have no client URL yet and are left for later.
fn voter_endpoints(list: &[Mem]) -> Vec<String> {
    list.iter()
        .filter(|m| m.voter())
        .filter_map(|m| m.client_urls.first())
        .map(|u| conn::host_port(u).to_string())
        .collect()
}

/// The voting members' client endpoints that `endpoints` lacks.
pub(crate) fn missing_endpoints(endpoints: &[String], list: &[Mem]) -> Vec<String> {
    voter_endpoints(list)
        .into_iter()
        .filter(|e| !endpoints.contains(e))
        .collect()
}

/// Add to this host's gateway the voting members it lacks (a member re-added through another
/// host after a rescue), and restart it if it runs; the endpoints added, if any. Only adds:
/// a member being replaced is out of the list for a moment, and an endpoint that does not
/// answer costs the gateway nothing, while a restart costs its clients a reconnect.
pub async fn add_missing(
    ctl: &impl Programs,
    local: &EtcdMembers,
    tls: &conn::Tls,
) -> anyhow::Result<Vec<String>> {
    let Some(gw) = &local.gateway else {
        return Ok(vec![]);
    };
    let mut c = Conn::new(conn::endpoints(local), tls);
    let list = c.list().await.map_err(|e| anyhow!(e))?;
    let missing = missing_endpoints(&gw.endpoints, &list);
    if missing.is_empty() {
        return Ok(missing);
    }
    let endpoints = gw
        .endpoints
        .iter()
        .chain(&missing)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    {
        let say = |line: &str| tracing::info!("gateway {}: {line}", gw.program);
        learn(
            &say,
            &gw.env_file,
            &gw.runtime_file,
            &[("endpoints", &endpoints)],
            "gateway sync (liveness)",
        )?;
    }
    if is_up(gw.state) {
        let reply = ctl
            .act(crate::supervisor::UserOp::Restart, vec![gw.program.clone()])
            .await?;
        if let Some(r) = reply.results.iter().find(|r| !r.ok) {
            bail!("restart {}: {}", gw.program, r.message);
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(name: &str, client: &str, learner: bool) -> Mem {
        Mem {
            id: 1,
            name: name.into(),
            peer_urls: vec![],
            client_urls: if client.is_empty() {
                vec![]
            } else {
                vec![client.into()]
            },
            learner,
        }
    }

    #[test]
    fn only_started_voters_the_gateway_lacks_are_added() {
        let have = vec!["10.0.20.1:2079".to_string(), "10.0.20.2:2179".to_string()];
        let list = [
            mem("boot0", "http://10.0.20.1:2079", false),
            mem("boot1", "http://10.0.20.2:2179", false),
            mem("boot2", "http://10.0.20.3:2279", false),
        ];
        assert_eq!(missing_endpoints(&have, &list), ["10.0.20.3:2279"]);
        let waiting = [
            mem("boot0", "http://10.0.20.1:2079", false),
            mem("", "", false),
            mem("boot2", "http://10.0.20.3:2279", true),
        ];
        assert!(
            missing_endpoints(&have, &waiting).is_empty(),
            "an unstarted member or a learner waits"
        );
        // A member the gateway lists but the cluster no longer has stays (never removed).
        assert!(missing_endpoints(&have, &list[..1]).is_empty());
    }
}
