//! CreateContainer + StartContainer latency through CRI, as a kubelet sees it, for one arm of
//! bench/nri-latency.sh: prints one JSON line {"arm", "n", "p50_ms", "p99_ms", "samples_ms"}.
//!
//! usage: cri_latency ARM N
//! The container is named "nginx" (so the seed policy scopes it when rampart runs) and runs
//! busybox's sleep, so what is timed is the runtime's work, not an application's start.

use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use rampart_integration::cri::{ContainerSpec, Cri, PodSpec, unique_name};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let arm = args.next().unwrap_or_else(|| "run".into());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let cri = Cri::connect_default().await?;
    let pod = cri
        .run_pod(
            &PodSpec::new(unique_name("bench"))
                .namespace("rampart-bench")
                .label("app", "nginx"),
        )
        .await?;
    let (mut runtime, _) = cri.raw();
    let spec =
        ContainerSpec::new("nginx", "rampart.local/busybox:latest").command(["sleep", "3600"]);
    let mut samples = Vec::with_capacity(n);
    // One untimed round warms caches (image metadata, snapshotter).
    for i in 0..=n {
        let t0 = Instant::now();
        let c = cri.create_container(&pod, &spec).await?;
        cri.start_container(&c.id).await?;
        let dt = t0.elapsed();
        if i > 0 {
            samples.push(dt);
        }
        runtime
            .stop_container(cri::StopContainerRequest {
                container_id: c.id.clone(),
                timeout: 0,
            })
            .await?;
        runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: c.id.clone(),
            })
            .await?;
    }
    cri.remove_pod(&pod.id).await?;
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| ms(samples[((samples.len() as f64 - 1.0) * p).round() as usize]);
    println!(
        "{{\"arm\":\"{arm}\",\"n\":{n},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"samples_ms\":[{}]}}",
        pct(0.5),
        pct(0.99),
        samples
            .iter()
            .map(|d| format!("{:.2}", ms(*d)))
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(())
}
