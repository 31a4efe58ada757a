//! Reading a server's `/metrics`.

use crate::TestServer;

/// The server's metrics in the OpenMetrics text format.
///
/// # Panics
/// When `/metrics` does not answer 200 with the OpenMetrics content type.
pub async fn scrape(server: &TestServer) -> String {
    let response = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.expect("metrics body")
}

/// The value of `series` (name and labels exactly as rendered) in `metrics`; 0 when absent.
pub fn value(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}
