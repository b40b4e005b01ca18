//! The two HTTP endpoints: the AdminServer (`admin.serverPort`, commands as
//! JSON; HTTPS with `admin.forceHttps` or `admin.portUnification`, as
//! ZooKeeper's Jetty, with the `ssl.quorum.*` key store, and client
//! certificates with `admin.needClientAuth`; the snapshot and restore
//! commands in `admin_backup`, `transfer_leadership` in `admin_transfer`)
//! and Prometheus metrics
//! (`metricsProvider.httpPort`). Both ask the core task, which owns the
//! state, and never block it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::admin_auth::Asker;
use crate::{admin, admin_backup, admin_transfer, CoreInput};

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

/// How the AdminServer's connections begin (`admin.forceHttps`,
/// `admin.portUnification`).
pub(crate) struct Https {
    acceptor: tokio_rustls::TlsAcceptor,
    /// `admin.portUnification`: plain HTTP too.
    plain_too: bool,
}

impl Https {
    pub(crate) fn new(cfg: &crate::Config) -> Result<Option<Https>, String> {
        if !cfg.admin_force_https && !cfg.admin_port_unification {
            return Ok(None);
        }
        // As ZooKeeper's Jetty: the server's certificate, a client's
        // only with admin.needClientAuth.
        let client_auth = if cfg.admin_need_client_auth {
            crate::tls::settings::ClientAuth::Need
        } else {
            crate::tls::settings::ClientAuth::None
        };
        let config = crate::tls::rustls_config::server(&cfg.tls.quorum, client_auth)
            .map_err(|e| format!("AdminServer HTTPS: {e}"))?;
        Ok(Some(Https {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            plain_too: !cfg.admin_force_https,
        }))
    }
}

/// A listener whose connections are plain HTTP or, with `Https`, TLS
/// (a handshake that fails or takes over 10 s drops that connection).
struct Listener {
    tcp: tokio::net::TcpListener,
    https: Option<Arc<Https>>,
}

const TLS_HANDSHAKE: u8 = 0x16;

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Asker {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Asker {
        stream.remote_addr().clone()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Box<dyn crate::peer_stream::Io>;
    type Addr = Asker;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (sock, addr) = match self.tcp.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "AdminServer accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let plain = Asker {
                ip: addr.ip(),
                x509: None,
            };
            let Some(https) = &self.https else {
                return (Box::new(sock), plain);
            };
            if https.plain_too {
                let mut first = [0u8; 1];
                let peeked =
                    tokio::time::timeout(std::time::Duration::from_secs(10), sock.peek(&mut first))
                        .await;
                match peeked {
                    Ok(Ok(1)) if first[0] != TLS_HANDSHAKE => return (Box::new(sock), plain),
                    Ok(Ok(1)) => {}
                    _ => continue,
                }
            }
            let hs = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                https.acceptor.accept(sock),
            )
            .await;
            match hs {
                Ok(Ok(s)) => {
                    let x509 = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| crate::tls::dn::subject(c));
                    return (
                        Box::new(s),
                        Asker {
                            ip: addr.ip(),
                            x509,
                        },
                    );
                }
                Ok(Err(e)) => {
                    tracing::info!(%addr, "AdminServer: TLS handshake failed: {}", crate::tls::describe(&e))
                }
                Err(_) => tracing::info!(%addr, "AdminServer: TLS handshake not done within 10 s"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Asker {
            ip: self.tcp.local_addr()?.ip(),
            x509: None,
        })
    }
}

async fn serve(
    what: &'static str,
    ip: Option<IpAddr>,
    port: u16,
    app: Router,
    https: Option<Arc<Https>>,
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
    tracing::info!(
        "{what} listening on {addr}{}",
        match &https {
            None => "",
            Some(h) if h.plain_too => " (HTTPS and HTTP: admin.portUnification)",
            Some(_) => " (HTTPS only: admin.forceHttps)",
        }
    );
    let listener = Listener {
        tcp: listener,
        https,
    };
    let _ = axum::serve(listener, app.into_make_service_with_connect_info::<Asker>())
        .with_graceful_shutdown(async move {
            let _ = stop.recv().await;
        })
        .await;
}

pub(crate) fn start(
    cfg: &Arc<crate::Config>,
    https: Option<Https>,
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
        let backup = Arc::new(admin_backup::Backup::new(core.clone(), cfg.clone()));
        let mut app = Router::new();
        for name in ["snapshot", "snap"] {
            app = app.route(&format!("{base}/{name}"), get(admin_backup::snapshot));
        }
        for name in ["restore", "rest"] {
            app = app.route(&format!("{base}/{name}"), post(admin_backup::restore));
        }
        let transfer = Arc::new(admin_transfer::Transfer {
            core: core.clone(),
            cfg: cfg.clone(),
        });
        let app = app
            .layer(DefaultBodyLimit::max(admin_backup::MAX_BODY_BYTES))
            .with_state(backup)
            .merge(
                Router::new()
                    .route(
                        &format!("{base}/transfer_leadership"),
                        get(admin_transfer::transfer),
                    )
                    .with_state(transfer),
            )
            .merge(
                Router::new()
                    .route(&base, get(index))
                    .route(&format!("{base}/"), get(index))
                    .route(&format!("{base}/{{name}}"), get(command))
                    .with_state(ctx),
            );
        tasks.spawn(serve(
            "AdminServer",
            cfg.admin_server_address,
            cfg.admin_server_port,
            app,
            https.map(Arc::new),
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
            None,
            stop.subscribe(),
        ));
    }
}
