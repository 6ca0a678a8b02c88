//! The accept loop shared by HTTP and HTTPS: each connection (TLS-handshaken first when configured) is served in its
//! own task, HTTP/1.1 or HTTP/2, under the connection-level limits of [`RequestLimits`]: at most `max_connections`
//! open (the rest wait in the listen backlog), headers read within `read_timeout`, at most 64 KiB and 100 of them.
//! On shutdown the listener stops, open connections finish their requests (for at most 30 s), then the store's
//! memtable is sealed.

use crate::deadline::RequestLimits;
use crate::{app, AppState, ServeError};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The most header bytes one request may send (HTTP/1.1 read buffer, HTTP/2 header list); more gets 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most header fields one HTTP/1.1 request may send; more gets 431.
pub const MAX_HEADERS: usize = 100;

/// Serves `state`'s router on `listener` (over TLS when `tls` is given) until `shutdown` completes.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = state.store.clone();
    let limits = state.limits;
    let purge = tokio::spawn(crate::session::purge_periodically(state.sessions.clone()));
    let router = app(state);
    let builder = Arc::new(connection_builder(&limits));
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: keep serving what is open.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            Connection { router: router.clone(), builder: builder.clone(), peer, watcher: graceful.watcher() };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection.serve(tcp).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection.serve(stream).await,
                    Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    purge.abort();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?} at shutdown; closing them");
    }
    tokio::task::spawn_blocking(move || store.flush()).await.map_err(std::io::Error::other)??;
    Ok(())
}

/// HTTP/1.1 and HTTP/2 with the header limits and the header read timeout.
fn connection_builder(limits: &RequestLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

/// One accepted connection, before its bytes are read.
struct Connection {
    router: axum::Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    peer: SocketAddr,
    watcher: Watcher,
}

impl Connection {
    async fn serve<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(self, io: I) {
        let Connection { router, builder, peer, watcher } = self;
        // The peer address is the source IP of self-audit traces.
        let service = tower::ServiceExt::map_request(router, move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        if let Err(error) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(%error, %peer, "connection ended with an error");
        }
    }
}
