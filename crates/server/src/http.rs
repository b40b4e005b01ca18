//! The two HTTP endpoints: the AdminServer (`admin.serverPort`, commands as
//! JSON) and Prometheus metrics (`metricsProvider.httpPort`). Both ask the
//! core task, which owns the state, and never block it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{admin, CoreInput};

struct Ctx {
    core: mpsc::Sender<CoreInput>,
    base: String,
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn index(State(ctx): State<Arc<Ctx>>) -> Html<String> {
    Html(admin::index(&ctx.base))
}

async fn command(State(ctx): State<Arc<Ctx>>, Path(name): Path<String>) -> Response {
    let Some(cmd) = admin::resolve(&name) else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "command": name, "error": format!("Command not found: {name}") }),
        );
    };
    let (tx, rx) = oneshot::channel();
    if ctx
        .core
        .send(CoreInput::Admin { cmd, reply: tx })
        .await
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if ctx
        .core
        .send(CoreInput::Metrics { reply: tx })
        .await
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn serve(
    what: &'static str,
    ip: Option<IpAddr>,
    port: u16,
    app: Router,
    mut stop: broadcast::Receiver<()>,
) {
    let addr = crate::listen::shown(ip, port);
    let listener = match crate::listen::bind(ip, port) {
        Ok(l) => l,
        Err(e) => {
            // As ZooKeeper: the server runs on without it.
            tracing::warn!("{what} not started: cannot bind {addr}: {e}");
            return;
        }
    };
    tracing::info!("{what} listening on {addr}");
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.recv().await;
        })
        .await;
}

pub(crate) fn start(
    cfg: &crate::Config,
    core: &mpsc::Sender<CoreInput>,
    stop: &broadcast::Sender<()>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    if cfg.admin_enable_server {
        let base = cfg.admin_command_url.clone();
        let ctx = Arc::new(Ctx {
            core: core.clone(),
            base: base.clone(),
        });
        let app = Router::new()
            .route(&base, get(index))
            .route(&format!("{base}/"), get(index))
            .route(&format!("{base}/{{name}}"), get(command))
            .with_state(ctx);
        tasks.spawn(serve(
            "AdminServer",
            cfg.admin_server_address,
            cfg.admin_server_port,
            app,
            stop.subscribe(),
        ));
    }
    if cfg.metrics_enabled {
        let ctx = Arc::new(Ctx {
            core: core.clone(),
            base: String::new(),
        });
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/", get(metrics))
            .with_state(ctx);
        tasks.spawn(serve(
            "Prometheus metrics",
            cfg.metrics_host,
            cfg.metrics_port,
            app,
            stop.subscribe(),
        ));
    }
}
