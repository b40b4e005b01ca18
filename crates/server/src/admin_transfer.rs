//! The AdminServer's `transfer_leadership?to=N` (ferrokeeper's; ZooKeeper
//! has no way to move leadership): asks the ensemble to make server N the
//! leader (Raft's leadership transfer, see `node::transfer`), from any
//! server, and answers `{"leader": N}` once N leads. It needs ALL on `/`,
//! as ZooKeeper 3.9's snapshot and restore do (`admin_auth`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

use crate::admin::{answer, unavailable};
use crate::admin_auth::{self, Asker};
use crate::config::Config;
use crate::CoreInput;

pub(crate) struct Transfer {
    pub core: mpsc::Sender<CoreInput>,
    pub cfg: Arc<Config>,
}

const CMD: &str = "transfer_leadership";

/// `to=N` from the query.
fn target(uri: &Uri) -> Option<u64> {
    crate::admin::query_param(uri, "to")?.parse().ok()
}

pub(crate) async fn transfer(
    State(t): State<Arc<Transfer>>,
    ConnectInfo(asker): ConnectInfo<Asker>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = admin_auth::require_all_on_root(&t.core, &t.cfg, CMD, &headers, &asker).await {
        return r;
    }
    let Some(to) = target(&uri) else {
        return answer(
            StatusCode::BAD_REQUEST,
            CMD,
            Some("name the server to lead: ?to=<server id>"),
            None,
        );
    };
    let (tx, rx) = oneshot::channel();
    if t.core
        .send(CoreInput::TransferLeader { to, reply: tx })
        .await
        .is_err()
    {
        return unavailable(CMD);
    }
    match rx.await {
        Ok(Ok(leader)) => {
            let mut m = serde_json::Map::new();
            m.insert("leader".into(), leader.into());
            answer(StatusCode::OK, CMD, None, Some(m))
        }
        Ok(Err(why)) => answer(StatusCode::CONFLICT, CMD, Some(&why), None),
        Err(_) => unavailable(CMD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_comes_from_the_query() {
        for (q, want) in [
            ("/commands/transfer_leadership?to=3", Some(3)),
            ("/commands/transfer_leadership?x=1&to=2", Some(2)),
            ("/commands/transfer_leadership", None),
            ("/commands/transfer_leadership?to=x", None),
        ] {
            assert_eq!(target(&q.parse().unwrap()), want, "{q}");
        }
    }
}
