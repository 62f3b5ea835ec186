//! The daemon's HTTP endpoints (loopback by default): `/healthz`, `/metrics`, and the dashboard.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Shared;

pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP server stopped: {e}");
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || super::metrics::render(&shared)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

async fn index(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || crate::report::dashboard::render_index(&shared))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}
