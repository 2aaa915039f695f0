//! `rampart-kubelet ps`: pods and their containers as a table or JSON.

use std::collections::BTreeMap;

use anyhow::Result;
use rampart_integration::cri::{ContainerFilter, ContainerSummary, Cri, PodFilter, short_id};
use serde_json::json;

use crate::cli::{Format, PsArgs};

pub async fn ps(cri: &Cri, args: &PsArgs) -> Result<()> {
    let filter = PodFilter {
        namespace: args.namespace.clone(),
        labels: args.labels.iter().cloned().collect(),
        ..PodFilter::default()
    };
    let mut pods = cri.list_pods(&filter).await?;
    pods.sort_by(|a, b| {
        (&a.namespace, &a.name, a.created_at).cmp(&(&b.namespace, &b.name, b.created_at))
    });
    // One listing for all containers rather than one call per pod.
    let mut by_pod: BTreeMap<String, Vec<ContainerSummary>> = BTreeMap::new();
    for c in cri.list_containers(&ContainerFilter::default()).await? {
        by_pod.entry(c.pod_id.clone()).or_default().push(c);
    }
    let mut ips = BTreeMap::new();
    for p in pods.iter().filter(|p| p.ready) {
        if let Some(ip) = cri.pod_ip(&p.id).await? {
            ips.insert(p.id.clone(), ip.to_string());
        }
    }

    if args.output == Format::Json {
        let items: Vec<_> = pods
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "namespace": p.namespace,
                    "name": p.name,
                    "uid": p.uid,
                    "ready": p.ready,
                    "ip": ips.get(&p.id),
                    "labels": p.labels,
                    "containers": by_pod.get(&p.id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }

    let id = |s: &str| {
        if args.no_trunc {
            s.to_owned()
        } else {
            short_id(s).to_owned()
        }
    };
    let mut rows = vec![
        [
            "NAMESPACE",
            "POD",
            "CONTAINER",
            "STATE",
            "IP",
            "POD ID",
            "CONTAINER ID",
        ]
        .map(String::from),
    ];
    for p in &pods {
        let ip = ips.get(&p.id).cloned().unwrap_or_else(|| "-".into());
        let pod_state = if p.ready { "ready" } else { "notready" };
        match by_pod.get(&p.id) {
            Some(containers) => {
                for c in containers {
                    rows.push([
                        p.namespace.clone(),
                        p.name.clone(),
                        c.name.clone(),
                        c.state.to_string(),
                        ip.clone(),
                        id(&p.id),
                        id(&c.id),
                    ]);
                }
            }
            None => rows.push([
                p.namespace.clone(),
                p.name.clone(),
                "-".into(),
                format!("pod {pod_state}"),
                ip,
                id(&p.id),
                "-".into(),
            ]),
        }
    }
    print!("{}", render(&rows));
    Ok(())
}

/// Left-aligned columns, two spaces apart, no trailing blanks.
fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let rows = [
            ["NS".to_owned(), "POD".to_owned(), "IP".to_owned()],
            ["default".to_owned(), "p".to_owned(), "-".to_owned()],
        ];
        assert_eq!(render(&rows), "NS       POD  IP\ndefault  p    -\n");
    }
}
