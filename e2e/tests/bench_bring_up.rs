//! Benchmark (`make bench`): the three-rack sample at the fake's and the operator's default
//! timings, as a user would run it. Prints the time from apply to converged, the Kubernetes
//! requests of the bring-up, and those of a steady state (watches aside). Figures, not asserts:
//! the tests assert behaviour, this measures it.

use std::time::{Duration, Instant};

use k8ssandra_e2e::scenario::{Scenario, THREE_RACK_SAMPLE};

/// How long the steady state is watched (`BENCH_STEADY_SECONDS`, default 60).
fn steady_window() -> Duration {
    let seconds = std::env::var("BENCH_STEADY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

#[tokio::test]
#[ignore = "a benchmark: run with `make bench`"]
async fn bring_up_of_the_three_rack_sample() {
    let scenario = Scenario::start_at_default_timings("bench_bring_up", "cluster1")
        .await
        .expect("the fleet starts");
    let operator = scenario.operator();
    // The watches list once; what follows is the bring-up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.requests().clear();
    let started = Instant::now();
    scenario.apply(THREE_RACK_SAMPLE).await.expect("applied");
    scenario
        .wait_converged("dc1", 3)
        .await
        .expect("dc1 converges");
    let bring_up = started.elapsed();
    let requests = operator.requests().all();
    let writes = operator.requests().writes().len();
    let reads: Vec<String> = requests
        .iter()
        .filter(|r| r.starts_with("GET "))
        .cloned()
        .collect();
    println!(
        "bring-up: {:.2} s to converged, {} requests ({} reads, {writes} writes); reads: {reads:?}",
        bring_up.as_secs_f64(),
        requests.len(),
        reads.len()
    );
    // The passes right after convergence record what they did; then the steady state.
    tokio::time::sleep(Duration::from_secs(10)).await;
    operator.requests().clear();
    let passes = operator.passes();
    let window = steady_window();
    tokio::time::sleep(window).await;
    let steady = operator.requests().all();
    println!(
        "steady state: {} requests in {} s over {} passes{}",
        steady.len(),
        window.as_secs(),
        operator.passes() - passes,
        listed(&steady)
    );
    // One pass over the unchanged datacenter, triggered by an annotation.
    operator.requests().clear();
    let passes = operator.passes();
    scenario
        .annotate("dc1", "example.com/bench", "touched")
        .await
        .expect("annotated");
    k8ssandra_e2e::wait::until("a pass", Duration::from_secs(30), || async {
        (operator.passes() > passes).then_some(())
    })
    .await
    .expect("the operator passes");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let quiet = operator.requests().all();
    println!(
        "one pass over the unchanged datacenter: {} requests{}",
        quiet.len(),
        listed(&quiet)
    );
}

fn listed(requests: &[String]) -> String {
    if requests.is_empty() {
        String::new()
    } else {
        format!(": {requests:?}")
    }
}
