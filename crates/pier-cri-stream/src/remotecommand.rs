//! Kubernetes' remotecommand protocol (exec and attach), as the kubelet
//! serves it: the client's streams (error, stdin, stdout, stderr, resize)
//! over SPDY streams or websocket channels, then the outcome on the error
//! stream: a JSON `Status` from v4 on, plain text before.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::debug;

use crate::backend::{Backend, BackendError, Streams, TerminalSize};
use crate::pipe::{Ender, InStream, Out, OutStream};
use crate::spdy;

pub(crate) const V1: &str = "channel.k8s.io";
pub(crate) const V2: &str = "v2.channel.k8s.io";
pub(crate) const V3: &str = "v3.channel.k8s.io";
pub(crate) const V4: &str = "v4.channel.k8s.io";
pub(crate) const V5: &str = "v5.channel.k8s.io";

/// What the kubelet offers over SPDY (v5 is websocket-only), best first.
pub(crate) const SPDY_PROTOCOLS: &[&str] = &[V4, V3, V2, V1];
/// Over websockets, as the kubelet: v5 adds the close signal that ends
/// stdin; the base64 ones carry text messages for clients without binary
/// frames; "" is a client that names no subprotocol (binary, pre-v4).
pub(crate) const WS_PROTOCOLS: &[&str] = &[
    V5,
    V4,
    "v4.base64.channel.k8s.io",
    V1,
    "base64.channel.k8s.io",
    "",
];

/// How long a client may take to open its streams (the kubelet's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// A resize message is a small JSON object; more unparsed bytes end it.
const MAX_RESIZE_PENDING: usize = 4096;

/// Which streams the request asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The outcome, in the protocol's words.
pub(crate) enum Outcome {
    Exited(i32),
    Attached,
    Failed(BackendError),
}

/// The error stream's message, or nothing for a success before v4.
pub(crate) fn status_message(outcome: &Outcome, cmd: &[String], protocol: &str) -> Option<Vec<u8>> {
    // v4 and v5, over SPDY or websocket, binary or base64.
    let structured = protocol.starts_with("v4.") || protocol.starts_with("v5.");
    let status = match outcome {
        Outcome::Exited(0) | Outcome::Attached => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                cmd.join(" ")
            ),
            "reason": "NonZeroExitCode",
            // `reason` is StatusCause.Type's JSON name.
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(e) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {e}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": e.to_string()}]},
            "code": 500,
        }),
    };
    if structured {
        return Some(serde_json::to_vec(&status).expect("a JSON value serializes"));
    }
    match outcome {
        Outcome::Exited(0) | Outcome::Attached => None,
        _ => Some(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        ),
    }
}

/// Turns the resize stream's concatenated JSON objects into sizes. Ends
/// quietly on garbage: a bad resize must not end the session.
pub(crate) fn spawn_resize_decoder(mut input: InStream) -> mpsc::Receiver<TerminalSize> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut pending = BytesMut::new();
        while let Some(chunk) = input.recv().await {
            pending.extend_from_slice(&chunk);
            loop {
                let mut it =
                    serde_json::Deserializer::from_slice(&pending).into_iter::<TerminalSize>();
                match it.next() {
                    Some(Ok(size)) => {
                        let used = it.byte_offset();
                        let _ = pending.split_to(used);
                        if tx.send(size).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    None => break,
                    Some(Err(e)) => {
                        debug!("resize stream ended: {e}");
                        return;
                    }
                }
            }
            if pending.len() > MAX_RESIZE_PENDING {
                debug!("resize stream ended: message too long");
                return;
            }
        }
    });
    rx
}

/// Ids of the output streams, to end them after the outcome.
pub(crate) struct Opened {
    pub streams: Streams,
    pub error: u32,
    pub outputs: Vec<Ender>,
}

/// Waits for the SPDY streams the request implies, as the kubelet's
/// `waitStreamReply`: error always, stdin/stdout/stderr as asked, resize
/// with a TTY from v3 on. `None` when the client breaks off, takes over 30
/// seconds, or never opened an error stream.
pub(crate) async fn collect_spdy(
    session: &mut spdy::Session,
    wanted: Wanted,
    protocol: &str,
) -> Option<Opened> {
    let resize_wanted = wanted.tty && protocol != V1 && protocol != V2;
    let expected = 1
        + usize::from(wanted.stdin)
        + usize::from(wanted.stdout)
        + usize::from(wanted.stderr)
        + usize::from(resize_wanted);
    let mut error = None;
    let mut stdin = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut resize = None;
    let out = session.out.clone();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    let mut got = 0;
    while got < expected {
        let s = tokio::select! {
            s = session.incoming.recv() => s?,
            _ = &mut deadline => {
                debug!("timed out waiting for the client to create streams");
                return None;
            }
        };
        let kind = s.headers.get("streamtype").unwrap_or("").to_string();
        // As the kubelet: a stream of another type is ignored, not
        // counted; a second one of a type replaces the first.
        match kind.as_str() {
            "error" => error = Some(s.id),
            "stdin" => stdin = Some(s.input),
            "stdout" => stdout = Some(OutStream::new(s.id, out.clone())),
            "stderr" => stderr = Some(OutStream::new(s.id, out.clone())),
            "resize" => resize = Some(s.input),
            other => {
                debug!("ignoring a stream of unexpected type {other:?}");
                continue;
            }
        }
        got += 1;
    }
    let mut outputs = Vec::new();
    let error = error?;
    outputs.extend(stdout.as_ref().map(OutStream::ender));
    outputs.extend(stderr.as_ref().map(OutStream::ender));
    outputs.push(Ender::new(error));
    Some(Opened {
        streams: Streams {
            stdin,
            stdout,
            stderr,
            resize: resize.map(spawn_resize_decoder),
        },
        error,
        outputs,
    })
}

/// Writes the outcome on the error stream, then ends the output streams
/// and the connection.
pub(crate) async fn finish(
    out: &mpsc::Sender<Out>,
    error: u32,
    outputs: &[Ender],
    msg: Option<Vec<u8>>,
) {
    if let Some(m) = msg {
        let _ = out
            .send(Out::Data {
                id: error,
                data: Bytes::from(m),
            })
            .await;
    }
    for e in outputs {
        e.end(out).await;
    }
    let _ = out.send(Out::Close).await;
}

/// What to run once the streams are open.
pub(crate) enum Job {
    Exec(crate::ExecRequest),
    Attach(crate::AttachRequest),
}

impl Job {
    pub fn wanted(&self) -> Wanted {
        match self {
            Job::Exec(r) => Wanted {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            },
            Job::Attach(r) => Wanted {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                tty: r.tty,
            },
        }
    }

    pub async fn run<B: Backend>(
        self,
        backend: &B,
        streams: Streams,
        protocol: &str,
    ) -> Option<Vec<u8>> {
        match self {
            Job::Exec(req) => {
                let cmd = req.cmd.clone();
                let outcome = match backend.exec(req, streams).await {
                    Ok(code) => Outcome::Exited(code),
                    Err(e) => Outcome::Failed(e),
                };
                status_message(&outcome, &cmd, protocol)
            }
            Job::Attach(req) => {
                let outcome = match backend.attach(req, streams).await {
                    Ok(()) => Outcome::Attached,
                    Err(e) => Outcome::Failed(e),
                };
                status_message(&outcome, &[], protocol)
            }
        }
    }
}

/// Exec or attach over an upgraded SPDY connection.
pub(crate) async fn serve_spdy<B, IO>(
    backend: &B,
    job: Job,
    io: IO,
    protocol: &'static str,
    idle: Duration,
) where
    B: Backend,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut session = spdy::start(io, idle);
    let Some(opened) = collect_spdy(&mut session, job.wanted(), protocol).await else {
        let _ = session.out.send(Out::Close).await;
        return;
    };
    // Later streams are refused: the reader sees nobody listening.
    drop(session.incoming);
    let msg = job.run(backend, opened.streams, protocol).await;
    finish(&session.out, opened.error, &opened.outputs, msg).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn v4_statuses_are_what_client_go_decodes() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let ok: Value =
            serde_json::from_slice(&status_message(&Outcome::Exited(0), &cmd, V4).unwrap())
                .unwrap();
        assert_eq!(ok["status"], "Success");
        let three: Value =
            serde_json::from_slice(&status_message(&Outcome::Exited(3), &cmd, V5).unwrap())
                .unwrap();
        assert_eq!(three["status"], "Failure");
        assert_eq!(three["reason"], "NonZeroExitCode");
        assert_eq!(three["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(three["details"]["causes"][0]["message"], "3");
        let failed: Value = serde_json::from_slice(
            &status_message(&Outcome::Failed("no such container".into()), &cmd, V4).unwrap(),
        )
        .unwrap();
        assert_eq!(failed["status"], "Failure");
        assert_eq!(
            failed["message"],
            "Internal error occurred: no such container"
        );
    }

    #[test]
    fn older_protocols_get_text_and_nothing_on_success() {
        assert_eq!(status_message(&Outcome::Exited(0), &[], V3), None);
        assert_eq!(status_message(&Outcome::Attached, &[], V2), None);
        let msg = status_message(&Outcome::Exited(2), &["false".into()], V2).unwrap();
        assert!(String::from_utf8(msg).unwrap().contains("exit code 2"));
    }

    #[tokio::test]
    async fn resize_messages_split_anywhere_are_decoded() {
        let (tx, input) = crate::pipe::input(&crate::pipe::Budget::new());
        let mut sizes = spawn_resize_decoder(input);
        for part in [
            &b"{\"Width\":80,\"Hei"[..],
            b"ght\":24}\n{\"Width\":1",
            b"00,\"Height\":50}",
        ] {
            tx.send(Bytes::copy_from_slice(part)).await.unwrap();
        }
        assert_eq!(
            sizes.recv().await,
            Some(TerminalSize {
                width: 80,
                height: 24
            })
        );
        assert_eq!(
            sizes.recv().await,
            Some(TerminalSize {
                width: 100,
                height: 50
            })
        );
        // Garbage ends the stream, it does not panic.
        tx.send(Bytes::from_static(b"{\"Width\":-1}"))
            .await
            .unwrap();
        assert_eq!(sizes.recv().await, None);
    }

    #[tokio::test]
    async fn an_endless_resize_message_is_dropped() {
        let (tx, input) = crate::pipe::input(&crate::pipe::Budget::new());
        let mut sizes = spawn_resize_decoder(input);
        tx.send(Bytes::from_static(b"{\"Width\":")).await.unwrap();
        for _ in 0..10 {
            if tx.send(Bytes::from(vec![b' '; 1024])).await.is_err() {
                break;
            }
        }
        assert_eq!(sizes.recv().await, None);
    }
}
