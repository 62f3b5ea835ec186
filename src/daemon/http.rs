//! The daemon's HTTP endpoints (loopback by default): `/healthz`, `/metrics`, and the dashboard.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Shared;

pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .route("/report", get(report))
        .route("/job/{name}", get(job_page))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP server stopped: {e}");
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
