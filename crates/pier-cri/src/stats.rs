//! ContainerStats and ListContainerStats from the engine's cgroup samples.

use tonic::Status;

use crate::container::meta_of;
use crate::convert::{hash, now_ns, selects, status_of};
use crate::proto;
use crate::Cri;

impl Cri {
    pub(crate) fn stats_of(
        &self,
        rec: &pier_engine::ContainerRecord,
    ) -> Result<proto::ContainerStats, Status> {
        let (_, m) = meta_of(rec);
        let ts = now_ns();
        let sample = if rec.state.running() {
            self.engine.stats(&rec.id).map_err(status_of)?.cgroup
        } else {
            None
        };
        let u = |value: u64| Some(proto::UInt64Value { value });
        let (cpu, memory) = match sample {
            Some(c) => {
                let usage = c.memory.usage.unwrap_or(0);
                let inactive = c
                    .memory
                    .stats
                    .as_ref()
                    .and_then(|s| {
                        s.get("inactive_file")
                            .or_else(|| s.get("total_inactive_file"))
                    })
                    .copied()
                    .unwrap_or(0);
                let rss = c
                    .memory
                    .stats
                    .as_ref()
                    .and_then(|s| s.get("anon").or_else(|| s.get("rss")))
                    .copied()
                    .unwrap_or(0);
                (
                    proto::CpuUsage {
                        timestamp: ts,
                        usage_core_nano_seconds: u(c.cpu.total_usage),
                        ..Default::default()
                    },
                    proto::MemoryUsage {
                        timestamp: ts,
                        // The kubelet's working set: usage less inactive file pages.
                        working_set_bytes: u(usage.saturating_sub(inactive)),
                        usage_bytes: u(usage),
                        rss_bytes: u(rss),
                        ..Default::default()
                    },
                )
            }
            None => (
                proto::CpuUsage {
                    timestamp: ts,
                    usage_core_nano_seconds: u(0),
                    ..Default::default()
                },
                proto::MemoryUsage {
                    timestamp: ts,
                    working_set_bytes: u(0),
                    ..Default::default()
                },
            ),
        };
        Ok(proto::ContainerStats {
            attributes: Some(proto::ContainerAttributes {
                id: rec.id.clone(),
                metadata: Some(proto::ContainerMetadata {
                    name: m.name.clone(),
                    attempt: m.attempt,
                }),
                labels: hash(&m.labels),
                annotations: hash(&m.annotations),
            }),
            cpu: Some(cpu),
            memory: Some(memory),
            ..Default::default()
        })
    }

    pub(crate) fn list_stats(
        &self,
        f: Option<proto::ContainerStatsFilter>,
    ) -> Result<Vec<proto::ContainerStats>, Status> {
        let f = f.unwrap_or_default();
        let mut out = Vec::new();
        for rec in self.containers()? {
            let (sb, m) = meta_of(&rec);
            if (!f.id.is_empty() && !rec.id.starts_with(&f.id))
                || (!f.pod_sandbox_id.is_empty() && !sb.starts_with(&f.pod_sandbox_id))
                || !selects(&f.label_selector, &m.labels)
            {
                continue;
            }
            out.push(self.stats_of(&rec)?);
        }
        Ok(out)
    }
}
