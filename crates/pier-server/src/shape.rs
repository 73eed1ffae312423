//! Docker's JSON for what the engine describes with typed structs: the key
//! order `pier inspect` shows, the `null`s clients tell from a missing key,
//! and the fields older clients still read (`VirtualSize`, `ContainerConfig`,
//! the top-level bridge fields of `NetworkSettings`).

use pier_api::models::{EndpointSettings, HostConfig};
use pier_engine::{
    ContainerDetails, DiskUsage, HealthReport, ImageDetails, MemorySample, NetworkDetails,
    NetworkSettings, StatsSample, SystemReport, VersionReport,
};
use serde_json::{json, Map, Value};

/// `GET /containers/{id}/json`.
pub fn container_inspect(d: &ContainerDetails) -> Value {
    let s = &d.state;
    let status = s.status;
    let mut v = json!({
        "Id": d.id,
        "Created": d.created,
        "Path": d.path,
        "Args": d.args,
        "State": {
            "Status": status.as_str(),
            "Running": s.running(),
            "Paused": s.paused,
            "Restarting": status == pier_engine::ContainerStatus::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": status == pier_engine::ContainerStatus::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
        },
        "Image": d.image_id,
        "ResolvConfPath": d.resolv_conf_path,
        "HostnamePath": d.hostname_path,
        "HostsPath": d.hosts_path,
        "LogPath": d.log_path.as_deref().unwrap_or(""),
        "Name": format!("/{}", d.name),
        "RestartCount": d.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if d.exec_ids.is_empty() { Value::Null } else { json!(d.exec_ids) },
        "HostConfig": host_config(&d.host_config, &d.links),
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "Mounts": d.mounts,
        "Config": config(d),
        "NetworkSettings": network_settings(&d.network),
    });
    if let Some(h) = &d.health {
        v["State"]["Health"] = health(h);
    }
    if let Some(size) = d.size {
        v["SizeRw"] = json!(size.rw);
        v["SizeRootFs"] = json!(size.root_fs);
    }
    v
}

fn health(h: &HealthReport) -> Value {
    let log: Vec<Value> = h
        .log
        .iter()
        .map(|p| {
            json!({
                "Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output,
            })
        })
        .collect();
    json!({
        "Status": h.status,
        "FailingStreak": h.failing_streak,
        "Log": log,
    })
}

/// `Config`, with the `MacAddress` that API versions before 1.44 read there.
fn config(d: &ContainerDetails) -> Value {
    let mut v = serde_json::to_value(&d.config).unwrap_or_else(|_| json!({}));
    if let (Some(o), Some(mac)) = (v.as_object_mut(), &d.mac_address) {
        o.insert("MacAddress".into(), json!(mac));
    }
    v
}

fn host_config(h: &HostConfig, links: &[String]) -> Value {
    let mut v = serde_json::to_value(h).unwrap_or_else(|_| json!({}));
    // Links as Docker shows them (`/child:/parent/alias`), not as kept.
    if let Some(o) = v.as_object_mut() {
        let links = if links.is_empty() {
            Value::Null
        } else {
            json!(links)
        };
        o.insert("Links".into(), links);
    }
    // Fields docker's clients read without checking for presence.
    let defaults = json!({
        "NetworkMode": "bridge", "Privileged": false, "AutoRemove": false,
        "ReadonlyRootfs": false, "PublishAllPorts": false, "Memory": 0,
        "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "PidsLimit": null,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}},
        "Binds": null, "PortBindings": {}, "CapAdd": null, "CapDrop": null,
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
        "Tmpfs": null, "Ulimits": null, "ShmSize": 67108864, "Runtime": "runc",
        "IpcMode": "private", "PidMode": "", "UTSMode": "", "CgroupnsMode": "private",
        "ConsoleSize": [0, 0], "Isolation": "", "OomKillDisable": false,
    });
    if let (Some(o), Some(d)) = (v.as_object_mut(), defaults.as_object()) {
        for (k, dv) in d {
            o.entry(k.clone()).or_insert_with(|| dv.clone());
        }
    }
    v
}

/// An endpoint of `NetworkSettings.Networks`, every key present.
fn endpoint(ep: &EndpointSettings) -> Value {
    json!({
        "IPAMConfig": ep.ipam_config,
        "Links": ep.links,
        "Aliases": ep.aliases,
        "MacAddress": ep.mac_address.as_deref().unwrap_or(""),
        "DriverOpts": ep.driver_opts,
        "NetworkID": ep.network_id.as_deref().unwrap_or(""),
        "EndpointID": ep.endpoint_id.as_deref().unwrap_or(""),
        "Gateway": ep.gateway.as_deref().unwrap_or(""),
        "IPAddress": ep.ip_address.as_deref().unwrap_or(""),
        "IPPrefixLen": ep.ip_prefix_len.unwrap_or(0),
        "IPv6Gateway": ep.ipv6_gateway.as_deref().unwrap_or(""),
        "GlobalIPv6Address": ep.global_ipv6_address.as_deref().unwrap_or(""),
        "GlobalIPv6PrefixLen": ep.global_ipv6_prefix_len.unwrap_or(0),
        "DNSNames": ep.dns_names,
    })
}

fn network_settings(n: &NetworkSettings) -> Value {
    let ports: Map<String, Value> = n
        .ports
        .iter()
        .map(|(k, bindings)| {
            let b = bindings.as_ref().map(|bs| {
                bs.iter()
                    .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                    .collect::<Vec<_>>()
            });
            (k.clone(), json!(b))
        })
        .collect();
    let networks: Map<String, Value> = n
        .networks
        .iter()
        .map(|(name, ep)| (name.clone(), endpoint(ep)))
        .collect();
    let b = &n.bridge;
    json!({
        "Bridge": "",
        "SandboxID": n.sandbox_id,
        "SandboxKey": n.sandbox_key,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": b.endpoint_id,
        "Gateway": b.gateway,
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": b.ip_address,
        "IPPrefixLen": b.ip_prefix_len,
        "IPv6Gateway": "",
        "MacAddress": b.mac_address,
        "Networks": networks,
    })
}

/// `GET /images/{name}/json`, with the fields older clients read (`Parent`,
/// `DockerVersion`, `VirtualSize`, `ContainerConfig`).
pub fn image_inspect(d: &ImageDetails) -> Value {
    use pier_api::image::DockerConfig;
    let mut v = json!({
        "Id": d.id,
        "RepoTags": d.repo_tags,
        "RepoDigests": d.repo_digests,
        "Parent": d.parent,
        "Comment": d.comment,
        "Created": d.created,
        "Container": d.container,
        "ContainerConfig": DockerConfig::full(d.container_config.as_ref()),
        "DockerVersion": d.docker_version,
        "Author": d.author,
        "Config": DockerConfig::full(d.config.as_ref()),
        "Architecture": d.architecture,
    });
    let rest = json!({
        "Variant": d.variant,
        "Os": d.os,
        "Size": d.size,
        "VirtualSize": d.size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": d.layers},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    if let (Some(o), Value::Object(rest)) = (v.as_object_mut(), rest) {
        // `Variant` is `omitempty` in Docker's ImageInspect.
        o.extend(
            rest.into_iter()
                .filter(|(k, x)| k != "Variant" || !x.is_null()),
        );
    }
    v
}

/// `GET /networks/{id}` and the entries of `GET /networks`.
pub fn network(n: &NetworkDetails) -> Value {
    let containers: Map<String, Value> = n
        .containers
        .iter()
        .map(|(id, c)| {
            let v = json!({
                "Name": c.name,
                "EndpointID": c.endpoint_id,
                "MacAddress": c.mac_address,
                "IPv4Address": c.ipv4_address,
                "IPv6Address": "",
            });
            (id.clone(), v)
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": n.ipam_options, "Config": n.ipam_config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

/// `GET /version`.
pub fn version(r: &VersionReport) -> Value {
    let v = pier_api::ENGINE_VERSION;
    json!({
        "Platform": {"Name": "Pier Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": pier_api::API_VERSION,
                "MinAPIVersion": pier_api::MIN_API_VERSION,
                "Os": "linux",
                "Arch": r.arch,
                "KernelVersion": r.kernel_version,
                "Experimental": "false",
            }
        }],
        "Version": v,
        "ApiVersion": pier_api::API_VERSION,
        "MinAPIVersion": pier_api::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": r.arch,
        "KernelVersion": r.kernel_version,
        "BuildTime": "",
    })
}

/// `GET /info`.
pub fn info(r: &SystemReport) -> Value {
    json!({
        "ID": "pier",
        "Containers": r.containers,
        "ContainersRunning": r.containers_running,
        "ContainersPaused": r.containers_paused,
        "ContainersStopped": r.containers_stopped,
        "Images": r.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": r.swap_limit,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": r.system_time,
        "LoggingDriver": r.logging_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": r.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": r.kernel_version,
        "OperatingSystem": "Pier on Linux",
        "OSType": "linux",
        "OSVersion": "",
        "Architecture": r.architecture,
        "NCPU": r.ncpu,
        "MemTotal": r.mem_total,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": r.registry_mirrors},
        "DockerRootDir": r.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": r.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": pier_api::ENGINE_VERSION,
        "Runtimes": {"pier": {"path": r.runtime_path}},
        "DefaultRuntime": "pier",
        // API 1.44; Docker lists none unless experimental.
        "CDISpecDirs": [],
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    })
}

/// `GET /system/df`.
pub fn disk_usage(d: &DiskUsage) -> Value {
    json!({
        "LayersSize": d.layers_size,
        "Images": d.images,
        "Containers": d.containers,
        "Volumes": d.volumes,
        "BuildCache": d.build_cache.iter().map(|b| json!({
            "ID": b.id,
            "Type": "regular",
            "Description": "",
            "InUse": false,
            "Shared": b.shared,
            "Size": b.size,
            "CreatedAt": b.created,
            "LastUsedAt": null,
            "UsageCount": 0,
        })).collect::<Vec<_>>(),
    })
}

/// Docker's zero time: `preread` before a second sample, `read` of a
/// stopped container.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `GET /containers/{id}/stats`: one sample, with the previous one's CPU
/// counters as `precpu_stats` (zeroes before the second sample).
pub fn stats(cur: &StatsSample, prev: Option<&StatsSample>) -> Value {
    let mut o = Map::new();
    o.insert("read".into(), json!(cur.read));
    o.insert("name".into(), json!(format!("/{}", cur.name)));
    o.insert("id".into(), json!(cur.id));
    o.insert("num_procs".into(), json!(0));
    o.insert("storage_stats".into(), json!({}));
    o.insert("cpu_stats".into(), cpu_stats(cur));
    match &cur.cgroup {
        Some(c) => {
            o.insert("memory_stats".into(), memory_stats(&c.memory));
            o.insert("pids_stats".into(), json!(c.pids));
            let b = &c.blkio;
            o.insert(
                "blkio_stats".into(),
                json!({
                    "io_service_bytes_recursive": b.io_service_bytes_recursive,
                    "io_serviced_recursive": b.io_serviced_recursive,
                    "io_queue_recursive": null, "io_service_time_recursive": null,
                    "io_wait_time_recursive": null, "io_merged_recursive": null,
                    "io_time_recursive": null, "sectors_recursive": null,
                }),
            );
        }
        None => {
            o.insert("memory_stats".into(), json!({}));
            o.insert("pids_stats".into(), json!({}));
            o.insert(
                "blkio_stats".into(),
                json!({"io_service_bytes_recursive": null, "io_serviced_recursive": null}),
            );
        }
    }
    if !cur.networks.is_empty() {
        let nets: Map<String, Value> = cur
            .networks
            .iter()
            .map(|(name, n)| (name.clone(), json!(n)))
            .collect();
        o.insert("networks".into(), Value::Object(nets));
    }
    let (pre, preread) = match prev {
        Some(p) => (cpu_stats(p), json!(p.read)),
        None => (cpu_stats_zero(), json!(ZERO_TIME)),
    };
    o.insert("precpu_stats".into(), pre);
    o.insert("preread".into(), preread);
    Value::Object(o)
}

fn cpu_stats_zero() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn cpu_stats(s: &StatsSample) -> Value {
    let Some(c) = &s.cgroup else {
        return cpu_stats_zero();
    };
    let c = &c.cpu;
    let mut usage = json!({
        "total_usage": c.total_usage,
        "usage_in_kernelmode": c.usage_in_kernelmode,
        "usage_in_usermode": c.usage_in_usermode,
    });
    if let Some(p) = &c.percpu_usage {
        usage["percpu_usage"] = json!(p);
    }
    json!({
        "cpu_usage": usage,
        "throttling_data": {
            "periods": c.periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_time,
        },
        "system_cpu_usage": c.system_cpu_usage,
        "online_cpus": c.online_cpus,
    })
}

/// Only what the cgroup version has (v2: no `max_usage`, `failcnt`).
fn memory_stats(m: &MemorySample) -> Value {
    let mut o = Map::new();
    let fields = [
        ("usage", m.usage),
        ("max_usage", m.max_usage),
        ("failcnt", m.failcnt),
        ("limit", m.limit),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    if let Some(s) = &m.stats {
        o.insert("stats".into(), json!(s));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pier_api::models::{ContainerConfig, PortBinding};
    use pier_engine::{BridgeEndpoint, ContainerSize, ContainerStatus, HealthProbe, StateRecord};

    fn details() -> ContainerDetails {
        ContainerDetails {
            id: "c".repeat(64),
            created: "2026-01-01T00:00:00Z".into(),
            name: "web".into(),
            path: "sleep".into(),
            args: vec!["9".into()],
            state: StateRecord::default(),
            health: None,
            image_id: "sha256:i".into(),
            resolv_conf_path: "/r".into(),
            hostname_path: "/h".into(),
            hosts_path: "/hs".into(),
            log_path: None,
            restart_count: 0,
            exec_ids: Vec::new(),
            host_config: HostConfig::default(),
            links: Vec::new(),
            config: ContainerConfig::default(),
            mac_address: None,
            mounts: Vec::new(),
            network: NetworkSettings::default(),
            size: None,
        }
    }

    #[test]
    fn inspect_of_a_created_container_has_docker_s_nulls_and_defaults() {
        let v = container_inspect(&details());
        assert_eq!(v["Name"], "/web");
        assert_eq!(v["State"]["Status"], "created");
        assert_eq!(v["State"]["Running"], false);
        assert!(v["State"].get("Health").is_none());
        assert_eq!(v["LogPath"], "");
        assert!(v["ExecIDs"].is_null());
        assert!(v.get("SizeRw").is_none() && v.get("SizeRootFs").is_none());
        let h = &v["HostConfig"];
        assert!(h["Links"].is_null() && h["PidsLimit"].is_null() && h["Binds"].is_null());
        assert_eq!(h["NetworkMode"], "bridge");
        assert_eq!(h["RestartPolicy"]["Name"], "no");
        assert_eq!(h["Dns"], json!([]));
        assert!(v["Config"].get("MacAddress").is_none());
        let n = &v["NetworkSettings"];
        assert_eq!((&n["IPAddress"], &n["SandboxID"]), (&json!(""), &json!("")));
        assert!(n["SecondaryIPAddresses"].is_null());
        assert_eq!((&n["Ports"], &n["Networks"]), (&json!({}), &json!({})));
    }

    #[test]
    fn inspect_of_a_running_container_shows_what_the_engine_knows() {
        let mut d = details();
        d.state.status = ContainerStatus::Restarting;
        d.health = Some(HealthReport {
            status: "healthy",
            failing_streak: 0,
            log: vec![HealthProbe {
                start: "s".into(),
                end: "e".into(),
                exit_code: 0,
                output: "ok".into(),
            }],
        });
        d.log_path = Some("/l.log".into());
        d.exec_ids = vec!["x".into()];
        d.links = vec!["/db:/web/db".into()];
        d.mac_address = Some("02:42:ac:11:00:09".into());
        d.size = Some(ContainerSize { rw: 5, root_fs: 9 });
        d.network.ports = vec![
            ("53/udp".into(), None),
            (
                "80/tcp".into(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("8080".into()),
                }]),
            ),
        ];
        d.network.bridge = BridgeEndpoint {
            ip_address: "10.0.0.2".into(),
            ip_prefix_len: 16,
            ..Default::default()
        };
        d.network.networks = vec![(
            "bridge".into(),
            EndpointSettings {
                ip_address: Some("10.0.0.2".into()),
                ..Default::default()
            },
        )];
        let v = container_inspect(&d);
        assert_eq!(v["State"]["Restarting"], true);
        assert_eq!(v["State"]["Running"], true);
        assert_eq!(v["State"]["Health"]["Log"][0]["Output"], "ok");
        assert_eq!(v["LogPath"], "/l.log");
        assert_eq!(v["ExecIDs"], json!(["x"]));
        assert_eq!(v["HostConfig"]["Links"], json!(["/db:/web/db"]));
        assert_eq!(v["Config"]["MacAddress"], "02:42:ac:11:00:09");
        assert_eq!((&v["SizeRw"], &v["SizeRootFs"]), (&json!(5), &json!(9)));
        let n = &v["NetworkSettings"];
        assert!(n["Ports"]["53/udp"].is_null());
        assert_eq!(
            n["Ports"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(
            (&n["IPAddress"], &n["IPPrefixLen"]),
            (&json!("10.0.0.2"), &json!(16))
        );
        let ep = &n["Networks"]["bridge"];
        assert_eq!(ep["IPAddress"], "10.0.0.2");
        // Every key present, as Docker sends them.
        for k in ["IPAMConfig", "Links", "Aliases", "DriverOpts", "DNSNames"] {
            assert!(ep[k].is_null(), "{k}: {ep}");
        }
        assert_eq!(
            (&ep["MacAddress"], &ep["GlobalIPv6PrefixLen"]),
            (&json!(""), &json!(0))
        );
    }

    #[test]
    fn image_inspect_keeps_the_fields_old_clients_read() {
        let d = ImageDetails {
            id: "sha256:i".into(),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: Vec::new(),
            parent: String::new(),
            comment: String::new(),
            created: "2026-01-01T00:00:00Z".into(),
            container: String::new(),
            container_config: None,
            docker_version: String::new(),
            author: String::new(),
            config: Some(ContainerConfig {
                cmd: Some(vec!["sh".into()]),
                ..Default::default()
            }),
            architecture: "amd64".into(),
            variant: None,
            os: "linux".into(),
            size: 7,
            layers: vec!["sha256:l".into()],
        };
        let v = image_inspect(&d);
        assert_eq!((&v["Size"], &v["VirtualSize"]), (&json!(7), &json!(7)));
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
        // Docker's zero config for images not made by commit.
        assert_eq!(v["ContainerConfig"]["Cmd"], Value::Null);
        assert_eq!(v["ContainerConfig"]["User"], "");
        assert_eq!(v["Container"], "");
        assert!(v.get("Variant").is_none());
        assert_eq!(
            v["RootFS"],
            json!({"Type": "layers", "Layers": ["sha256:l"]})
        );
    }

    fn sample(read: &str, total: u64) -> StatsSample {
        let mut cg = pier_engine::CgroupSample::default();
        cg.cpu.total_usage = total;
        cg.memory.usage = Some(7);
        StatsSample {
            read: read.into(),
            name: "web".into(),
            id: "c".into(),
            cgroup: Some(cg),
            networks: Vec::new(),
        }
    }

    #[test]
    fn previous_sample_becomes_precpu() {
        let v = stats(&sample("t1", 9), Some(&sample("t0", 5)));
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 9);
        assert_eq!(v["preread"], "t0");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["memory_stats"], json!({"usage": 7}));
        assert!(v.get("networks").is_none());
        assert!(v["blkio_stats"]["sectors_recursive"].is_null());
        let first = stats(&sample("t0", 5), None);
        assert_eq!(first["preread"], ZERO_TIME);
        assert_eq!(first["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    }

    #[test]
    fn a_stopped_container_has_zeroed_counters() {
        let mut s = sample(ZERO_TIME, 0);
        s.cgroup = None;
        let v = stats(&s, None);
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["pids_stats"], json!({}));
        assert_eq!(
            v["blkio_stats"],
            json!({"io_service_bytes_recursive": null, "io_serviced_recursive": null})
        );
        assert!(v["cpu_stats"].get("online_cpus").is_none());
    }
}
