//! `pier stats`.

use super::print;
use crate::format::table::Format;
use crate::format::units::{bytes_size, human_size_prec, short_id};
use anyhow::Result;
use clap::Args;
use pier_client::{query, Client};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

fn f(v: &Value, p: &str) -> f64 {
    v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0)
}

/// One stats row from a `/stats?stream=0` answer, as Docker computes it.
pub fn stats_row(name: &str, id: &str, s: &Value, trunc: bool) -> Value {
    let cpu_delta =
        f(s, "/cpu_stats/cpu_usage/total_usage") - f(s, "/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f(s, "/cpu_stats/system_cpu_usage") - f(s, "/precpu_stats/system_cpu_usage");
    let mut cpus = f(s, "/cpu_stats/online_cpus");
    if cpus == 0.0 {
        cpus = s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map(|a| a.len() as f64)
            .unwrap_or(1.0);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let usage = f(s, "/memory_stats/usage");
    // cgroup v1 reports cache as total_inactive_file, v2 as inactive_file.
    let cache = s
        .pointer("/memory_stats/stats/total_inactive_file")
        .or_else(|| s.pointer("/memory_stats/stats/inactive_file"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let mem = if cache < usage { usage - cache } else { usage };
    let limit = f(s, "/memory_stats/limit");
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
            tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => wr += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let pids = s
        .pointer("/pids_stats/current")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "BlockIO": format!("{} / {}", human_size_prec(rd, 3), human_size_prec(wr, 3)),
        "CPUPerc": format!("{cpu:.2}%"),
        "Container": name,
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "MemPerc": format!("{mem_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "Name": s["name"].as_str().unwrap_or(name).trim_start_matches('/'),
        "NetIO": format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        "PIDs": pids.to_string(),
    })
}

pub async fn stats(client: &Client, a: StatsArgs) -> Result<i32> {
    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty() && f != "table")
        .unwrap_or_else(|| "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}".into());
    let fmt = Format::parse(&format)?;
    let header = json!({
        "ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    });
    loop {
        let began = std::time::Instant::now();
        let targets: Vec<(String, String)> = if a.containers.is_empty() {
            let q = if a.all { "?all=1" } else { "" };
            let list: Vec<Value> = client.get_json(&format!("/containers/json{q}")).await?;
            list.iter()
                .map(|c| {
                    (
                        c["Id"].as_str().unwrap_or("").to_string(),
                        c["Id"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        } else {
            a.containers
                .iter()
                .map(|c| (c.clone(), c.clone()))
                .collect()
        };
        // One request per container at once: each non-streamed answer takes
        // the daemon about a second (two samples for real CPU deltas).
        let answers = futures::future::join_all(targets.iter().map(|(_, id)| async move {
            let q = query(&[("stream", "0".to_string())]);
            client
                .get_json::<Value>(&format!("/containers/{id}/stats{q}"))
                .await
        }))
        .await;
        let mut rows = Vec::new();
        let mut code = 0;
        for ((name, id), answer) in targets.iter().zip(answers) {
            match answer {
                Ok(s) => {
                    let full_id = s["id"].as_str().unwrap_or(id).to_string();
                    rows.push(stats_row(name, &full_id, &s, !a.no_trunc));
                }
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        let out = fmt.render(&header, &rows, &|_, _, _| None)?;
        if a.no_stream {
            print(&out);
            return Ok(code);
        }
        // Clear the screen and redraw, as Docker does on a terminal.
        print(&format!("\x1b[2J\x1b[H{out}"));
        // Running containers' answers already take a second; stopped ones
        // answer at once and must not make this loop spin.
        let pause = std::time::Duration::from_secs(1).saturating_sub(began.elapsed());
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_math() {
        let s = json!({
            "name": "/web", "id": "0123456789abcdef",
            "cpu_stats": {"cpu_usage": {"total_usage": 200}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2097152, "limit": 4194304, "stats": {"total_inactive_file": 1048576}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 2000}},
            "pids_stats": {"current": 3},
        });
        let r = stats_row("web", "0123456789abcdef", &s, true);
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemUsage"], "1MiB / 4MiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["NetIO"], "1kB / 2kB");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["ID"], "0123456789ab");
    }
}
