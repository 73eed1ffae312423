//! `pier create` and the container flags shared with `pier run`.

use super::{opts, registry, report_error, Exit};
use anyhow::{bail, Result};
use clap::Args;
use pier_api::models::{
    ContainerCreateBody, ContainerCreateResponse, EndpointIpamConfig, EndpointSettings,
    HealthConfig, HostConfig, HostConfigLogConfig, NetworkingConfig, PortBinding,
};
use pier_client::{query, Client, ClientError};
use std::collections::HashMap;

// Flags of `docker create` (and `docker run`, which adds a few). Not a doc
// comment: clap would make it the about text of `run` and `create`.
#[derive(Args, Debug, Clone, Default)]
pub struct CreateArgs {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[command(flatten)]
    pub resources: super::resources::ResourceArgs,
    #[command(flatten)]
    pub isolation: super::isolation::IsolationArgs,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// What `create` sends: the body and the query parameters.
pub struct CreateRequest {
    pub body: ContainerCreateBody,
    pub name: Option<String>,
    pub platform: Option<String>,
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map<K, V>(m: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

impl CreateArgs {
    pub fn image(&self) -> &str {
        &self.args[0]
    }

    /// Builds the create request; `detach` is `run -d` (no streams attached).
    pub fn build(&self, detach: bool) -> Result<CreateRequest> {
        let mut attach_stdin = self.attach.iter().any(|a| a.eq_ignore_ascii_case("stdin"));
        let mut attach_stdout = self.attach.iter().any(|a| a.eq_ignore_ascii_case("stdout"));
        let mut attach_stderr = self.attach.iter().any(|a| a.eq_ignore_ascii_case("stderr"));
        for a in &self.attach {
            if !["stdin", "stdout", "stderr"].contains(&a.to_ascii_lowercase().as_str()) {
                bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
            }
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        if detach {
            if !self.attach.is_empty() {
                bail!("Conflicting options: -a and -d");
            }
            attach_stdin = false;
            attach_stdout = false;
            attach_stderr = false;
        }

        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(opts::parse_kv_file(f, true)?);
        }
        for e in &self.env {
            env.push(opts::env_value(e)?);
        }
        let mut label_items = Vec::new();
        for f in &self.label_file {
            label_items.extend(opts::parse_kv_file(f, false)?);
        }
        label_items.extend(self.label.iter().cloned());
        let labels = opts::labels_map(&label_items);

        let mut exposed: Vec<String> = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &self.publish {
            for (port, b) in opts::publish(p)? {
                if !exposed.contains(&port) {
                    exposed.push(port.clone());
                }
                let entry = bindings.entry(port).or_insert_with(|| Some(Vec::new()));
                if let (Some(list), Some(b)) = (entry.as_mut(), b) {
                    list.push(b);
                }
            }
        }
        for e in &self.expose {
            for port in opts::expose(e)? {
                if !exposed.contains(&port) {
                    exposed.push(port);
                }
            }
        }

        // `-v /data` is an anonymous volume; anything with a source is a bind or named volume.
        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        for v in &self.volume {
            if v.is_empty() {
                bail!("invalid empty volume spec");
            }
            if v.contains(':') {
                binds.push(v.clone());
            } else {
                volumes.push(v.clone());
            }
        }
        let mut mounts = Vec::new();
        for m in &self.mount {
            mounts.push(opts::mount(m)?);
        }
        let mut tmpfs = HashMap::new();
        for t in &self.tmpfs {
            let (p, o) = opts::tmpfs(t);
            tmpfs.insert(p, o);
        }
        let mut ulimits = Vec::new();
        for u in &self.ulimit {
            ulimits.push(opts::ulimit(u)?);
        }
        let mut sysctls = HashMap::new();
        for s in &self.sysctl {
            let (k, v) = opts::kv(s, "sysctl")?;
            sysctls.insert(k, v);
        }
        let mut log_opts = HashMap::new();
        for s in &self.log_opt {
            let (k, v) = opts::kv(s, "log-opt")?;
            log_opts.insert(k, v);
        }
        let mut devices = Vec::new();
        for d in &self.device {
            devices.push(opts::device(d)?);
        }

        let dur = |v: &Option<String>| -> Result<Option<i64>> {
            v.as_deref().map(opts::go_duration).transpose()
        };
        let healthcheck = if self.no_healthcheck {
            if self.health_cmd.is_some() {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            })
        } else if self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some()
        {
            Some(HealthConfig {
                test: self
                    .health_cmd
                    .as_ref()
                    .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
                interval: dur(&self.health_interval)?,
                timeout: dur(&self.health_timeout)?,
                retries: self.health_retries,
                start_period: dur(&self.health_start_period)?,
                start_interval: dur(&self.health_start_interval)?,
            })
        } else {
            None
        };

        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let cmd = non_empty(self.args[1..].to_vec());

        let networking_config = match &self.network {
            Some(net)
                if !self.network_alias.is_empty()
                    || self.ip.is_some()
                    || self.ip6.is_some()
                    || self.mac_address.is_some() =>
            {
                let ep = EndpointSettings {
                    aliases: non_empty(self.network_alias.clone()),
                    ipam_config: (self.ip.is_some() || self.ip6.is_some()).then(|| {
                        EndpointIpamConfig {
                            ipv4_address: self.ip.clone(),
                            ipv6_address: self.ip6.clone(),
                            ..Default::default()
                        }
                    }),
                    mac_address: self.mac_address.clone(),
                    ..Default::default()
                };
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(net.clone(), ep)])),
                })
            }
            _ => None,
        };

        let mut host_config = HostConfig {
            binds: non_empty(binds),
            mounts: non_empty(mounts),
            tmpfs: non_empty_map(tmpfs),
            port_bindings: non_empty_map(bindings),
            publish_all_ports: self.publish_all.then_some(true),
            auto_remove: self.rm.then_some(true),
            memory: self.memory.as_deref().map(opts::ram_in_bytes).transpose()?,
            memory_swap: self
                .memory_swap
                .as_deref()
                .map(opts::memory_swap)
                .transpose()?,
            memory_reservation: self
                .memory_reservation
                .as_deref()
                .map(opts::ram_in_bytes)
                .transpose()?,
            nano_cpus: self.cpus.as_deref().map(opts::nano_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            readonly_rootfs: self.read_only.then_some(true),
            init: self.init.then_some(true),
            cap_add: non_empty(self.cap_add.clone()),
            cap_drop: non_empty(self.cap_drop.clone()),
            privileged: self.privileged.then_some(true),
            ulimits: non_empty(ulimits),
            network_mode: self.network.clone(),
            dns: non_empty(self.dns.clone()),
            dns_search: non_empty(self.dns_search.clone()),
            dns_options: non_empty(self.dns_option.clone()),
            extra_hosts: non_empty(
                self.add_host
                    .iter()
                    .map(|h| h.replacen('=', ":", 1))
                    .collect(),
            ),
            links: non_empty(self.link.clone()),
            restart_policy: self
                .restart
                .as_deref()
                .map(opts::restart_policy)
                .transpose()?,
            security_opt: non_empty(opts::security_opts(&self.security_opt)?),
            sysctls: non_empty_map(sysctls),
            shm_size: self
                .shm_size
                .as_deref()
                .map(opts::ram_in_bytes)
                .transpose()?,
            log_config: (self.log_driver.is_some() || !log_opts.is_empty()).then(|| {
                HostConfigLogConfig {
                    typ: self.log_driver.clone(),
                    config: non_empty_map(log_opts),
                }
            }),
            group_add: non_empty(self.group_add.clone()),
            volumes_from: non_empty(self.volumes_from.clone()),
            devices: non_empty(devices),
            ipc_mode: self.ipc.clone(),
            pid_mode: self.pid.clone(),
            uts_mode: self.uts.clone(),
            userns_mode: self.userns.clone(),
            cgroupns_mode: self
                .cgroupns
                .as_deref()
                .map(|c| serde_json::from_value(serde_json::Value::String(c.to_string())))
                .transpose()
                .map_err(|_| anyhow::anyhow!("--cgroupns: invalid CGROUP mode"))?,
            cgroup_parent: self.cgroup_parent.clone(),
            oom_kill_disable: self.oom_kill_disable.then_some(true),
            oom_score_adj: self.oom_score_adj,
            runtime: self.runtime.clone(),
            container_id_file: self.cidfile.clone(),
            ..Default::default()
        };
        self.resources.apply(&mut host_config)?;
        self.isolation.apply(&mut host_config)?;

        let body = ContainerCreateBody {
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(attach_stdin),
            attach_stdout: Some(attach_stdout),
            attach_stderr: Some(attach_stderr),
            exposed_ports: non_empty(exposed),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(attach_stdin && !detach),
            env: non_empty(env),
            cmd,
            healthcheck,
            image: Some(self.image().to_string()),
            volumes: non_empty(volumes),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: Some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        Ok(CreateRequest {
            body,
            name: self.name.clone(),
            platform: self.platform.clone(),
        })
    }
}

/// `busybox` -> `busybox:latest`, as Docker's "Unable to find image" message shows it.
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container, pulling the image first when it is missing (or
/// always, with `--pull always`). Returns the new container's ID.
pub async fn create_container(
    client: &Client,
    args: &CreateArgs,
    req: &CreateRequest,
) -> Result<String> {
    if let Some(path) = &args.cidfile
        && std::path::Path::new(path).exists()
    {
        bail!(
            "container ID file found, make sure the other container isn't running or delete {path}"
        );
    }
    let mut q = Vec::new();
    if let Some(n) = &req.name {
        q.push(("name", n.clone()));
    }
    if let Some(p) = &req.platform {
        q.push(("platform", p.clone()));
    }
    let path = format!("/containers/create{}", query(&q));
    let image = args.image();
    match args.pull.as_str() {
        "always" => {
            registry::pull_image(client, image, req.platform.as_deref(), args.quiet, true).await?
        }
        "missing" | "never" => {}
        other => bail!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        ),
    }
    let resp: ContainerCreateResponse = match client.post_json(&path, Some(&req.body)).await {
        Ok(r) => r,
        Err(ClientError::Daemon {
            status: 404,
            message,
        }) if args.pull == "missing" && message.contains("image") => {
            eprintln!("Unable to find image '{}' locally", with_default_tag(image));
            registry::pull_image(client, image, req.platform.as_deref(), args.quiet, true).await?;
            client.post_json(&path, Some(&req.body)).await?
        }
        Err(e) => return Err(e.into()),
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(path) = &args.cidfile {
        std::fs::write(path, &resp.id)
            .map_err(|e| anyhow::anyhow!("failed to write the container ID to the file: {e}"))?;
    }
    Ok(resp.id)
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateCmd {
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `pier create`: prints the new container's ID.
pub async fn create(client: &Client, cmd: CreateCmd) -> Result<i32> {
    let req = match cmd.create.build(false) {
        Ok(r) => r,
        Err(e) => {
            report_error("create", &e.to_string());
            return Err(Exit(125).into());
        }
    };
    let id = create_container(client, &cmd.create, &req).await?;
    super::println(&id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        c: CreateArgs,
    }

    fn parse(args: &[&str]) -> CreateArgs {
        let mut v = vec!["create"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().c
    }

    #[test]
    fn command_after_image_keeps_its_flags() {
        let c = parse(&[
            "-it", "--rm", "-h", "box", "busybox", "sh", "-c", "echo hi", "-d",
        ]);
        assert!(c.interactive && c.tty && c.rm);
        assert_eq!(c.hostname.as_deref(), Some("box"));
        assert_eq!(c.args, vec!["busybox", "sh", "-c", "echo hi", "-d"]);
        let req = c.build(false).unwrap();
        assert_eq!(req.body.cmd.unwrap(), vec!["sh", "-c", "echo hi", "-d"]);
        assert_eq!(req.body.attach_stdin, Some(true));
        assert_eq!(req.body.stdin_once, Some(true));
        assert_eq!(req.body.host_config.unwrap().auto_remove, Some(true));
    }

    #[test]
    fn limits_ports_and_mounts() {
        let c = parse(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "-p",
            "8080:80",
            "-p",
            "53:53/udp",
            "-v",
            "/data",
            "-v",
            "/a:/b:ro",
            "--ulimit",
            "nofile=10:20",
            "--restart",
            "on-failure:2",
            "-e",
            "A=1",
            "--name",
            "web",
            "busybox",
        ]);
        let req = c.build(true).unwrap();
        assert_eq!(req.name.as_deref(), Some("web"));
        let hc = req.body.host_config.clone().unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.memory_swap, Some(-1));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.binds.unwrap(), vec!["/a:/b:ro"]);
        assert_eq!(req.body.volumes.clone().unwrap(), vec!["/data"]);
        assert!(hc.port_bindings.unwrap().contains_key("53/udp"));
        assert_eq!(req.body.attach_stdout, Some(false));
        let json = serde_json::to_value(&req.body).unwrap();
        assert_eq!(json["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert_eq!(
            json["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8080"
        );
        assert_eq!(json["HostConfig"]["Ulimits"][0]["Name"], "nofile");
        assert_eq!(json["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
        assert_eq!(json["Env"][0], "A=1");
    }

    #[test]
    fn attach_and_detach_conflict() {
        let c = parse(&["-a", "stdout", "busybox"]);
        assert!(c.build(true).is_err());
        let req = c.build(false).unwrap();
        assert_eq!(req.body.attach_stderr, Some(false));
        assert_eq!(req.body.attach_stdout, Some(true));
    }

    #[test]
    fn default_tag() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/busybox"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(with_default_tag("busybox:1.36"), "busybox:1.36");
        assert_eq!(with_default_tag("busybox@sha256:abc"), "busybox@sha256:abc");
    }
}
