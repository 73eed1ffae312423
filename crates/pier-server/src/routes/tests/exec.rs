//! `/containers/{id}/exec` and `/exec/...` against a fake exec service,
//! including the start stream, plain and hijacked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use futures::future::BoxFuture;
use pier_api::models::{ExecConfig, ExecInspectResponse, ProcessConfig};
use pier_engine::{EngineError, ExecStart, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{app, call, check, json, message};
use crate::services::ExecApi;

/// Exec IDs name their behaviour: `tty…` has a TTY, `ran` was started
/// before, `keys` has bad detach keys, `echo` echoes its stdin as stdout
/// frames; anything else unknown is not found. Calls are recorded.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    created: Mutex<Option<ExecConfig>>,
    /// Set once the server awaited `finished` (the exit code is recorded).
    exit_recorded: Arc<AtomicBool>,
}

impl Fake {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn known(id: &str) -> Result<()> {
        match id {
            "plain" | "tty" | "ran" | "keys" | "echo" | "detached" => Ok(()),
            _ => Err(EngineError::not_found(format!(
                "No such exec instance: {id}"
            ))),
        }
    }
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

impl ExecApi for Fake {
    fn create(&self, container: &str, cfg: ExecConfig) -> Result<String> {
        self.record(format!("create {container}"));
        *self.created.lock().unwrap() = Some(cfg.clone());
        match container {
            "gone" => Err(EngineError::not_found("No such container: gone")),
            "stopped" => Err(EngineError::conflict("Container stopped is not running")),
            _ if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) => {
                Err(EngineError::invalid_argument("No exec command specified"))
            }
            _ => Ok("plain".into()),
        }
    }
    fn tty(&self, id: &str) -> Result<bool> {
        Self::known(id)?;
        Ok(id == "tty")
    }
    fn detach_keys(&self, id: &str) -> Result<Option<String>> {
        Self::known(id)?;
        Ok((id == "keys").then(|| "ctrl-".to_string()))
    }
    fn start<'a>(
        &'a self,
        id: &'a str,
        opts: ExecStart,
    ) -> BoxFuture<'a, Result<Option<UnixStream>>> {
        Box::pin(async move {
            self.record(format!("start {id} detach={}", opts.detach));
            if id == "ran" {
                return Err(EngineError::conflict(
                    "Error: Exec command ran has already run",
                ));
            }
            if opts.detach {
                return Ok(None);
            }
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let id = id.to_string();
            tokio::spawn(async move {
                let mut s = ours;
                match id.as_str() {
                    // A TTY's output is raw; the route frames it if asked.
                    "tty" => {
                        let _ = s.write_all(b"hi\r\n").await;
                    }
                    "echo" => {
                        let _ = s.write_all(&frame(1, b"ready\n")).await;
                        let mut buf = [0u8; 64];
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    let _ = s.write_all(&frame(1, &buf[..n])).await;
                                }
                            }
                        }
                    }
                    _ => {
                        let _ = s.write_all(&frame(1, b"out\n")).await;
                        let _ = s.write_all(&frame(2, b"err\n")).await;
                    }
                }
            });
            Ok(Some(theirs))
        })
    }
    fn finished(&self, id: &str, limit: Duration) -> BoxFuture<'static, ()> {
        self.record(format!("finished {id} {}s", limit.as_secs()));
        let flag = self.exit_recorded.clone();
        Box::pin(async move {
            // The exit is recorded a moment after the output ends.
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, Ordering::SeqCst);
        })
    }
    fn resize<'a>(&'a self, id: &'a str, rows: u16, cols: u16) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.record(format!("resize {id} {rows}x{cols}"));
            Self::known(id)
        })
    }
    fn inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        Self::known(id)?;
        Ok(ExecInspectResponse {
            can_remove: Some(false),
            detach_keys: Some(String::new()),
            id: Some(id.into()),
            running: Some(false),
            exit_code: Some(3),
            process_config: Some(ProcessConfig {
                privileged: Some(false),
                user: Some(String::new()),
                tty: Some(false),
                entrypoint: Some("sh".into()),
                arguments: Some(vec!["-c".into(), "exit 3".into()]),
            }),
            open_stdin: Some(false),
            open_stderr: Some(true),
            open_stdout: Some(true),
            container_id: Some("c".repeat(64)),
            pid: Some(0),
        })
    }
}

fn setup() -> (Arc<Fake>, axum::Router) {
    let fake = Arc::new(Fake::default());
    let api: Arc<dyn ExecApi> = fake.clone();
    (fake, app(crate::routes::exec::routes().with_state(api)))
}

#[tokio::test]
async fn create_answers_201_and_maps_errors() {
    let (fake, app) = setup();
    // docker-py spells it `detachKeys`; Docker's decoder takes it.
    let body =
        r#"{"Cmd":["sh","-c","exit 3"],"AttachStdout":true,"detachKeys":"ctrl-x","Env":["A=1"]}"#;
    let (st, v) = json(&app, "POST", "/v1.41/containers/up/exec", body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, serde_json::json!({"Id": "plain"}));
    let cfg = fake.created.lock().unwrap().take().expect("create called");
    assert_eq!(cfg.detach_keys.as_deref(), Some("ctrl-x"));
    assert_eq!(
        cfg.cmd,
        Some(vec!["sh".into(), "-c".into(), "exit 3".into()])
    );
    assert_eq!(cfg.env, Some(vec!["A=1".into()]));
    assert_eq!(cfg.attach_stdout, Some(true));
    for (container, body, want, text) in [
        (
            "gone",
            r#"{"Cmd":["true"]}"#,
            StatusCode::NOT_FOUND,
            "No such container: gone",
        ),
        (
            "stopped",
            r#"{"Cmd":["true"]}"#,
            StatusCode::CONFLICT,
            "Container stopped is not running",
        ),
        (
            "up",
            r#"{"Cmd":[]}"#,
            StatusCode::BAD_REQUEST,
            "No exec command specified",
        ),
    ] {
        let (st, v) = json(&app, "POST", &format!("/containers/{container}/exec"), body).await;
        assert_eq!(st, want, "{container}: {v}");
        assert_eq!(message(&v), text);
    }
    for bad in [r#"{"Cmd":"true"#, r#"{"Cmd":7}"#] {
        let (st, v) = json(&app, "POST", "/containers/up/exec", bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(message(&v).starts_with("invalid JSON"), "{v}");
    }
    assert_eq!(fake.calls().len(), 4, "{:?}", fake.calls());
}

#[tokio::test]
async fn inspect_and_resize() {
    let (fake, app) = setup();
    let (st, v) = json(&app, "GET", "/exec/plain/json", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // What docker-py's exec_inspect and the CLI read.
    check(
        "exec inspect",
        &v,
        &[
            ("/ID", "string"),
            ("/Running", "bool"),
            ("/ExitCode", "number"),
            ("/Pid", "number"),
            ("/ContainerID", "string"),
            ("/CanRemove", "bool"),
            ("/DetachKeys", "\"\""),
            ("/OpenStdin", "bool"),
            ("/OpenStdout", "bool"),
            ("/OpenStderr", "bool"),
            ("/ProcessConfig", "object"),
            ("/ProcessConfig/entrypoint", "string"),
            ("/ProcessConfig/arguments", "array"),
            ("/ProcessConfig/tty", "bool"),
            ("/ProcessConfig/privileged", "bool"),
            ("/ProcessConfig/user", "\"\""),
        ],
    );
    assert_eq!(v["ExitCode"], 3);
    let (st, v) = json(&app, "GET", "/exec/nope/json", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(message(&v), "No such exec instance: nope");

    let (st, _) = json(&app, "POST", "/exec/tty/resize?h=40&w=120", "").await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = json(&app, "POST", "/exec/tty/resize?h=-1&w=120", "").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    message(&v);
    let (st, _) = json(&app, "POST", "/exec/nope/resize?h=1&w=1", "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(fake.calls(), ["resize tty 40x120", "resize nope 1x1"]);
}

#[tokio::test]
async fn start_streams_and_refuses() {
    let (fake, app) = setup();
    // Detached: 200, no body.
    let (st, _, body) = call(&app, "POST", "/exec/detached/start", r#"{"Detach":true}"#).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.is_empty());
    // Without Upgrade, the output is the body, multiplexed.
    let (st, h, body) = call(&app, "POST", "/exec/plain/start", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        h["content-type"],
        "application/vnd.docker.multiplexed-stream"
    );
    assert_eq!(body, [frame(1, b"out\n"), frame(2, b"err\n")].concat());
    // A TTY exec started with `Tty: true` streams raw...
    let (_, h, body) = call(&app, "POST", "/exec/tty/start", r#"{"Tty":true}"#).await;
    assert_eq!(h["content-type"], "application/vnd.docker.raw-stream");
    assert_eq!(body, b"hi\r\n");
    // ...and with `Tty: false` (docker-py) in stdout frames.
    let (_, h, body) = call(&app, "POST", "/exec/tty/start", r#"{"Tty":false}"#).await;
    assert_eq!(
        h["content-type"],
        "application/vnd.docker.multiplexed-stream"
    );
    assert_eq!(body, frame(1, b"hi\r\n"));

    for (id, body, want, text) in [
        (
            "nope",
            "",
            StatusCode::NOT_FOUND,
            "No such exec instance: nope",
        ),
        (
            "ran",
            "",
            StatusCode::CONFLICT,
            "Error: Exec command ran has already run",
        ),
        (
            "keys",
            "",
            StatusCode::BAD_REQUEST,
            "Invalid detach keys (ctrl-) provided",
        ),
        ("plain", "{", StatusCode::BAD_REQUEST, "invalid JSON"),
    ] {
        let (st, v) = json(&app, "POST", &format!("/exec/{id}/start"), body).await;
        assert_eq!(st, want, "{id}: {v}");
        assert!(message(&v).starts_with(text), "{id}: {v}");
    }
    assert_eq!(
        fake.calls(),
        [
            "start detached detach=true",
            "start plain detach=false",
            "finished plain 5s",
            "start tty detach=false",
            "finished tty 5s",
            "start tty detach=false",
            "finished tty 5s",
            "start ran detach=false",
        ]
    );
}

/// The hijack path as the docker CLI and docker-py use it: `101`, then
/// stdin goes in, frames come out, and the connection closes only after
/// the exit code is recorded.
#[tokio::test]
async fn start_hijacks_the_connection() {
    let (fake, app) = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("api.sock");
    let listener =
        crate::endpoints::Listener::Unix(tokio::net::UnixListener::bind(&sock).expect("bind"));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(crate::listener::serve(
        vec![listener],
        app,
        4,
        Duration::from_secs(5),
        stop_rx,
        Duration::from_millis(100),
    ));

    let mut c = UnixStream::connect(&sock).await.expect("connect");
    let body = r#"{"Detach":false,"Tty":false}"#;
    let head = format!(
        "POST /exec/echo/start HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\n\
         Connection: Upgrade\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let headers_end = loop {
        let n = c.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the headers: {got:?}");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let headers = String::from_utf8_lossy(&got[..headers_end]).to_string();
    assert!(headers.starts_with("HTTP/1.1 101"), "{headers}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.multiplexed-stream"),
        "{headers}"
    );
    let mut out = got[headers_end..].to_vec();
    let ready = frame(1, b"ready\n");
    while out.len() < ready.len() {
        let n = c.read(&mut buf).await.expect("read");
        assert!(n > 0);
        out.extend_from_slice(&buf[..n]);
    }
    c.write_all(b"ping\n").await.expect("stdin");
    // Half-close: stdin ends, the fake process exits.
    c.shutdown().await.expect("shutdown");
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
        .await
        .expect("the session ends")
        .expect("read");
    assert_eq!(out, [ready, frame(1, b"ping\n")].concat());
    assert!(
        fake.exit_recorded.load(Ordering::SeqCst),
        "the stream closed before the exit code was recorded"
    );
    assert_eq!(
        fake.calls(),
        ["start echo detach=false", "finished echo 5s"]
    );

    stop_tx.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .expect("server task");
}
