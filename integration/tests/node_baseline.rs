//! The node's baseline, as a kubelet would see it: pods run through containerd's CRI with their own
//! network namespace and IP, nginx serves HTTP and behaves like the official image, and exec
//! reports exit codes and output. Today `cat /etc/passwd` inside nginx succeeds: this is the
//! behaviour that rampart's policies will turn into a block.
//!
//! Needs root and the node (`make node-up`). Under `make test` (RAMPART_NODE_TESTS=1) a missing
//! node fails these tests instead of skipping them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rampart_integration::cri::{ContainerSpec, PodSpec, TestPod, test_node, unique_name};

/// A minimal HTTP/1.0 GET from the host to the pod, retried while nginx starts.
fn http_get(ip: IpAddr, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s =
                TcpStream::connect_timeout(&SocketAddr::new(ip, 80), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) => return body,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for nginx on {ip}: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("nginx on {ip}:80 never answered: {e}"),
        }
    }
}

#[tokio::test]
async fn nginx_serves_on_its_own_pod_ip_and_reads_etc_passwd() {
    let Some(cri) = test_node().await else { return };
    let name = unique_name("nginx");
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(&name)
            .namespace("rampart-test")
            .label("app", "nginx"),
        &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")],
    )
    .await
    .expect("the nginx pod runs");

    // Its own network namespace, with an address from the node's CNI range.
    let ip = pod.ip.expect("a pod without host networking gets an IP");
    match ip {
        IpAddr::V4(v4) => assert!(
            Ipv4Addr::new(10, 88, 77, 0) <= v4 && v4 <= Ipv4Addr::new(10, 88, 77, 255),
            "{ip} is not in the node's pod range 10.88.77.0/24"
        ),
        IpAddr::V6(_) => panic!("expected an IPv4 pod address, got {ip}"),
    }
    let host_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let pod_netns = pod
        .exec("nginx", &["readlink", "/proc/1/ns/net"])
        .await
        .unwrap();
    assert_eq!(pod_netns.exit_code, 0, "{pod_netns:?}");
    assert_ne!(
        pod_netns.stdout_text().trim(),
        host_netns.to_string_lossy(),
        "the pod shares the host's network namespace"
    );

    let reply = http_get(ip, "/");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("Welcome to nginx!"), "{reply}");
    let missing = http_get(ip, "/no-such-page");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    // Like the official image: the master runs as root and resolved `user www-data` through
    // /etc/passwd; the workers run as www-data.
    let ps = pod.exec("nginx", &["ps", "-o", "user,args"]).await.unwrap();
    let ps = ps.stdout_text();
    assert!(
        ps.lines()
            .any(|l| l.starts_with("root") && l.contains("nginx: master process")),
        "{ps}"
    );
    assert_eq!(
        ps.lines()
            .filter(|l| l.starts_with("www-data") && l.contains("nginx: worker process"))
            .count(),
        2,
        "{ps}"
    );

    // The baseline that rampart's seed policy will block.
    let cat = pod.exec("nginx", &["cat", "/etc/passwd"]).await.unwrap();
    assert_eq!(cat.exit_code, 0, "{cat:?}");
    assert!(cat.stdout_text().contains("root:x:0:0:"), "{cat:?}");
    assert!(cat.stdout_text().contains("www-data:x:33:33:"), "{cat:?}");

    // nginx logged the requests to its stdout, which CRI keeps in the container log.
    let logs = pod.logs("nginx").await.unwrap();
    assert!(logs.contains("GET /no-such-page"), "{logs}");

    pod.remove().await.expect("the pod is removed");
    assert!(
        cri.find_pod("rampart-test", &name).await.is_err(),
        "the pod is still listed after removal"
    );
}

#[tokio::test]
async fn exec_reports_exit_code_stdout_and_stderr() {
    let Some(cri) = test_node().await else { return };
    let pod = TestPod::run(
        &cri,
        &PodSpec::new(unique_name("busybox")).namespace("rampart-test"),
        &[ContainerSpec::new("sh", "rampart.local/busybox:latest").command(["sleep", "3600"])],
    )
    .await
    .expect("the busybox pod runs");
    let out = pod
        .exec("sh", &["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    pod.remove().await.expect("the pod is removed");
}
