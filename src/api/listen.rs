//! The connection side of serving: the accept loop, HTTP/1.1 with a deadline for a
//! request's headers, a deadline for its body, and a graceful shutdown.
//!
//! A client that sends its headers a line at a time is cut off once
//! [`Limits::header_timeout`] has passed since the request began (hyper's
//! `header_read_timeout`, which also closes a kept-alive connection idle that long); a
//! body that has not fully arrived within [`Limits::body_timeout`] of its headers is
//! answered 408. Neither can hold a connection, or a place among the requests handled at
//! once, for longer.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::fhir::FhirError;
use super::{ApiError, Limits};

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish and closes idle connections.
pub(super) async fn serve_app(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    // Dropped at shutdown: every connection task sees it and shuts down gracefully.
    let (closing, closed) = tokio::sync::watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            base_without_slash(&mut request);
            let mut app = app.clone();
            async move {
                std::future::poll_fn(|cx| {
                    tower::Service::<Request<Body>>::poll_ready(&mut app, cx)
                })
                .await?;
                tower::Service::<Request<Body>>::call(&mut app, request.map(Body::new)).await
            }
        });
        let http = http.clone();
        let mut closed = closed.clone();
        connections.spawn(async move {
            let mut connection = pin!(http.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    drop(closing);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// `POST /fhir/` (the base with a trailing slash, as some clients send batches) is
/// `POST /fhir`.
fn base_without_slash<B>(request: &mut Request<B>) {
    if request.uri().path() != "/fhir/" {
        return;
    }
    let rest = request
        .uri()
        .query()
        .map_or_else(String::new, |q| format!("?{q}"));
    if let Ok(uri) = format!("/fhir{rest}").parse() {
        *request.uri_mut() = uri;
    }
}

/// Answers 408 when the request's body has not fully arrived within the time given.
pub(super) async fn body_deadline(
    State(within): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let fhir = request.uri().path().starts_with("/fhir");
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(Deadline {
            body,
            timer: Box::pin(tokio::time::sleep(within)),
            late: late.clone(),
        })
    });
    let response = next.run(request).await;
    if !late.load(Ordering::Relaxed) {
        return response;
    }
    let secs = within.as_secs().max(1);
    if fhir {
        FhirError::RequestTimeout(secs).into_response()
    } else {
        ApiError::RequestTimeout(secs).into_response()
    }
}

/// A request body that fails once its timer has run out.
struct Deadline {
    body: Body,
    timer: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct TooLate;

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => {}
            ready => return ready,
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.late.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(TooLate))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
