//! The daemon's HTTP endpoints (loopback by default): `/healthz` (liveness), `/readyz` (503
//! while a job is NOT VERIFIED or its last run of a step failed), `/metrics`, and the
//! dashboard. With a token, every page but `/healthz` requires `Authorization: Bearer TOKEN`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Shared;

pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, token: Option<String>) {
    let guarded = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .route("/report", get(report))
        .route("/job/{name}", get(job_page))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let token = token.clone();
                async move {
                    if let Some(t) = &token {
                        let given = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .unwrap_or("");
                        if !same_token(given.as_bytes(), t.as_bytes()) {
                            return (
                                StatusCode::UNAUTHORIZED,
                                [(header::WWW_AUTHENTICATE, "Bearer")],
                                "a bearer token is required\n",
                            )
                                .into_response();
                        }
                    }
                    next.run(req).await
                }
            },
        ));
    let app = Router::new().route("/healthz", get(|| async { "ok\n" })).merge(guarded).with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP server stopped: {e}");
    }
}

/// Compares in time that does not depend on where the tokens differ.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 200 when every job is VERIFIED and no step's last run failed; 503 with the reasons otherwise.
async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let problems = tokio::task::spawn_blocking(move || super::dashboard::not_ready(&shared))
        .await
        .unwrap_or_else(|_| vec!["readiness could not be computed".into()]);
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || super::metrics::render(&shared)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn report(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || super::dashboard::render_report(&shared, None, 90))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

async fn job_page(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> axum::response::Response {
    let n = name.clone();
    match tokio::task::spawn_blocking(move || super::dashboard::render_report(&shared, Some(&n), 30))
        .await
        .ok()
        .flatten()
    {
        Some(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no job '{name}'\n")).into_response(),
    }
}

async fn index(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || super::dashboard::render_index(&shared))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}
