//! The exec lifecycle against a fake container and a recording fake shim
//! (youki's recording-`Syscall` style): no root, no shim, no kernel.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use pier_api::models::{ContainerConfig, ExecConfig, HostConfig};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::{ExecHost, ExecRunner, ExecService, ExecStart};
use crate::records::{ContainerRecord, StateRecord};
use crate::shim::AttachOptions;
use crate::{ContainerStatus, EngineError, ErrorKind, Result};

/// Records every call; `start` answers `start_result`, `wait` answers the
/// code sent on `exit` once one is sent.
struct Runner {
    calls: Mutex<Vec<String>>,
    start_result: std::result::Result<i64, (String, i32)>,
    exit: watch::Receiver<Option<i64>>,
    /// The shim's end of the attach stream.
    attached: Mutex<Option<UnixStream>>,
}

impl Runner {
    fn record(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }
}

impl ExecRunner for Runner {
    fn prepare<'a>(
        &'a self,
        id: &'a str,
        process: oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> BoxFuture<'a, Result<()>> {
        let args = process.args().clone().unwrap_or_default().join(" ");
        let mut env: Vec<String> = process
            .env()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.starts_with("A=") || e.starts_with("B="))
            .collect();
        env.sort();
        let cwd = process.cwd().display().to_string();
        self.record(format!(
            "prepare {id} [{args}] env={env:?} cwd={cwd} tty={tty} stdin={stdin}"
        ));
        Box::pin(async { Ok(()) })
    }
    fn attach<'a>(&'a self, id: &'a str, o: AttachOptions) -> BoxFuture<'a, Result<UnixStream>> {
        self.record(format!(
            "attach {id} stdin={} stdout={} stderr={}",
            o.stdin, o.stdout, o.stderr
        ));
        Box::pin(async move {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            *self.attached.lock().unwrap() = Some(ours);
            Ok(theirs)
        })
    }
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>> {
        self.record(format!("start {id}"));
        let r = self
            .start_result
            .clone()
            .map_err(|(m, code)| EngineError::cannot_start(m, code));
        Box::pin(async move { r })
    }
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<i64>> {
        self.record(format!("wait {id}"));
        let mut rx = self.exit.clone();
        Box::pin(async move {
            let code = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| EngineError::internal("exit channel closed"))?;
            Ok(code.unwrap_or(-1))
        })
    }
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>> {
        self.record(format!("resize {id} {rows}x{cols}"));
        Box::pin(async { Ok(()) })
    }
}

/// One container `web` (running unless told), its runner, and the events.
struct Host {
    rec: Mutex<ContainerRecord>,
    runner: Arc<Runner>,
    rootfs: PathBuf,
    events: Mutex<Vec<String>>,
}

impl ExecHost for Host {
    fn container(&self, key: &str) -> Result<ContainerRecord> {
        let rec = self.rec.lock().unwrap().clone();
        if key == rec.id || key == rec.name {
            Ok(rec)
        } else {
            Err(EngineError::not_found(format!("No such container: {key}")))
        }
    }
    fn runner(&self, _id: &str) -> Result<Arc<dyn ExecRunner>> {
        Ok(self.runner.clone())
    }
    fn rootfs(&self, _id: &str) -> PathBuf {
        self.rootfs.clone()
    }
    fn event(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        let extra: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.events
            .lock()
            .unwrap()
            .push(format!("{action} {} {}", rec.name, extra.join(" ")));
    }
}

fn record(status: ContainerStatus) -> ContainerRecord {
    ContainerRecord {
        id: "c".repeat(64),
        name: "web".into(),
        created: crate::now_rfc3339(),
        image: "busybox".into(),
        image_id: String::new(),
        config: ContainerConfig {
            env: Some(vec!["A=1".into(), "PATH=/bin".into()]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        },
        host_config: HostConfig::default(),
        path: "sleep".into(),
        args: vec!["60".into()],
        state: StateRecord {
            status,
            pid: 4242,
            ..Default::default()
        },
        restart_count: 0,
        chain_id: None,
        log_path: String::new(),
        hostname_path: String::new(),
        hosts_path: String::new(),
        resolv_conf_path: String::new(),
        cgroups_path: "/pier-test/web".into(),
        mounts: Vec::new(),
        network: Default::default(),
        cri: None,
    }
}

fn setup(
    start_result: std::result::Result<i64, (String, i32)>,
) -> (Arc<Host>, watch::Sender<Option<i64>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exit_tx, exit_rx) = watch::channel(None);
    let host = Arc::new(Host {
        rec: Mutex::new(record(ContainerStatus::Running)),
        runner: Arc::new(Runner {
            calls: Mutex::new(Vec::new()),
            start_result,
            exit: exit_rx,
            attached: Mutex::new(None),
        }),
        rootfs: dir.path().to_path_buf(),
        events: Mutex::new(Vec::new()),
    });
    (host, exit_tx, dir)
}

fn config(cmd: &[&str]) -> ExecConfig {
    ExecConfig {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        env: Some(vec!["B=2".into()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_exec_runs_exits_and_is_inspected() {
    let (host, exit_tx, _dir) = setup(Ok(77));
    let execs = ExecService::default();
    let id = execs
        .create(host.as_ref(), "web", config(&["sh", "-c", "exit 3"]))
        .expect("create");
    assert_eq!(execs.ids_of(&"c".repeat(64)), vec![id.clone()]);
    let before = execs.inspect(&id).expect("inspect");
    assert_eq!((before.running, before.exit_code), (Some(false), None));

    let stream = execs
        .start(host.clone(), &id, ExecStart { detach: false })
        .await
        .expect("start");
    assert!(stream.is_some(), "an attached start hands back the stream");
    let running = execs.inspect(&id).expect("inspect");
    assert_eq!(running.running, Some(true));
    assert_eq!(running.pid, Some(77));
    assert_eq!(running.exit_code, None);

    exit_tx.send(Some(3)).expect("exit");
    tokio::time::timeout(
        Duration::from_secs(5),
        execs.finished(&id, Duration::from_secs(5)),
    )
    .await
    .expect("finished resolves once the exit is recorded");
    let done = execs.inspect(&id).expect("inspect");
    assert_eq!(done.running, Some(false));
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.pid, Some(0));
    assert_eq!(done.container_id, Some("c".repeat(64)));
    let pc = done.process_config.expect("process config");
    assert_eq!(pc.entrypoint.as_deref(), Some("sh"));
    assert_eq!(pc.arguments, Some(vec!["-c".into(), "exit 3".into()]));

    let again = execs
        .start(host.clone(), &id, ExecStart::default())
        .await
        .expect_err("a second start");
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert_eq!(
        again.to_string(),
        format!("Error: Exec command {id} has already run")
    );

    assert_eq!(
        *host.runner.calls.lock().unwrap(),
        [
            format!(
                "prepare {id} [sh -c exit 3] env=[\"A=1\", \"B=2\"] cwd=/srv tty=false stdin=false"
            ),
            format!("attach {id} stdin=false stdout=true stderr=true"),
            format!("start {id}"),
            format!("wait {id}"),
        ]
    );
    // The event of the exit comes from the task that waited: let it land.
    for _ in 0..100 {
        if host.events.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *host.events.lock().unwrap(),
        [
            format!("exec_create web execID={id}"),
            format!("exec_start web execID={id}"),
            format!("exec_die web execID={id} exitCode=3"),
        ]
    );
    execs.drop_of(&"c".repeat(64));
    assert_eq!(
        execs.inspect(&id).expect_err("dropped").kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn a_process_that_cannot_start_reports_its_code_on_the_stream() {
    let (host, _exit_tx, _dir) = setup(Err(("exec: \"nope\": not found".into(), 127)));
    let execs = ExecService::default();
    let id = execs
        .create(host.as_ref(), "web", config(&["nope"]))
        .expect("create");
    let mut stream = execs
        .start(host.clone(), &id, ExecStart { detach: false })
        .await
        .expect("start answers with the message on the stream")
        .expect("a stream");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let text = b"OCI runtime exec failed: exec: \"nope\": not found\r\n";
    assert_eq!(out, crate::logs::frame(1, text).to_vec());
    let done = execs.inspect(&id).expect("inspect");
    assert_eq!((done.running, done.exit_code), (Some(false), Some(127)));
    // No exec_start: the process never ran.
    assert_eq!(host.events.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn create_refuses_what_docker_refuses() {
    let (host, _exit_tx, _dir) = setup(Ok(1));
    let execs = ExecService::default();
    let e = execs
        .create(host.as_ref(), "web", config(&[]))
        .expect_err("no command");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.to_string(), "No exec command specified");
    let e = execs
        .create(host.as_ref(), "db", config(&["true"]))
        .expect_err("no container");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    host.rec.lock().unwrap().state.paused = true;
    let e = execs
        .create(host.as_ref(), "web", config(&["true"]))
        .expect_err("paused");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e
        .to_string()
        .ends_with("is paused, unpause the container before exec"));
    *host.rec.lock().unwrap() = record(ContainerStatus::Exited);
    let e = execs
        .create(host.as_ref(), "web", config(&["true"]))
        .expect_err("not running");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!("Container {} is not running", "c".repeat(64))
    );
    assert!(host.events.lock().unwrap().is_empty());
    assert!(host.runner.calls.lock().unwrap().is_empty());
}
