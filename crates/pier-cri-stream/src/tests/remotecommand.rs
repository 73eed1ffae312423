//! Exec and attach over SPDY, as `crictl exec` / `crictl attach` and
//! critest's streaming specs drive them (client-go's SPDY executor).

use serde_json::Value;

use super::*;
use crate::{PortForwardRequest, RequestError};

const CLIENT_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

fn exec_req(cmd: &[&str]) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty: false,
        stdin: false,
        stdout: true,
        stderr: true,
    }
}

fn status(r: &Received, id: u32) -> Value {
    serde_json::from_slice(r.data.get(&id).expect("a status")).unwrap()
}

#[tokio::test]
async fn exec_echo_negotiates_v4_and_reports_success() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["echo", "hello"])).unwrap();
        let (protocol, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        assert_eq!(protocol, "v4.channel.k8s.io");
        let error = c.open(&[("streamType", "error")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        let stderr = c.open(&[("streamType", "stderr")]).await;
        let r = c.read_to_end().await;
        assert_eq!(r.text(stdout), "hello\n");
        assert_eq!(r.text(stderr), "");
        assert_eq!(status(&r, error)["status"], "Success");
        for id in [error, stdout, stderr] {
            assert!(r.fin.contains(&id), "stream {id} not ended: {r:?}");
        }
        assert!(r.goaway);
    })
    .await;
}

#[tokio::test]
async fn exec_exit_code_3_is_a_non_zero_exit_status() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["exit", "3"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        let stderr = c.open(&[("streamType", "stderr")]).await;
        let r = c.read_to_end().await;
        assert_eq!(r.text(stderr), "bye\n");
        assert_eq!(r.text(stdout), "");
        let s = status(&r, error);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    })
    .await;
}

#[tokio::test]
async fn exec_v2_client_gets_the_error_as_text() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["exit", "3"])).unwrap();
        let (protocol, mut c) = SpdyClient::connect(&url, &["v2.channel.k8s.io"]).await;
        assert_eq!(protocol, "v2.channel.k8s.io");
        let error = c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        let r = c.read_to_end().await;
        assert!(r.text(error).contains("exit code 3"), "{}", r.text(error));
    })
    .await;
}

#[tokio::test]
async fn exec_stdin_reaches_the_command_and_its_end_ends_it() {
    bounded(async {
        let urls = start().await;
        let mut req = exec_req(&["cat"]);
        req.stdin = true;
        let url = urls.exec_url(req).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        let stdin = c.open(&[("streamType", "stdin")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        // Larger than one frame and one pipe chunk.
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        c.write(stdin, &big[..70_000], false).await;
        c.write(stdin, &big[70_000..], true).await;
        let r = c.read_to_end().await;
        assert_eq!(r.data.get(&stdout).map(Vec::len), Some(big.len()));
        assert_eq!(r.data[&stdout], big);
        assert_eq!(status(&r, error)["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn exec_tty_gets_the_clients_terminal_size() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .exec_url(ExecRequest {
                container_id: "c1".into(),
                cmd: vec!["size".into()],
                tty: true,
                stdin: true,
                stdout: true,
                stderr: false,
            })
            .unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "stdin")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        let resize = c.open(&[("streamType", "resize")]).await;
        // client-go's json.Encoder: one object per line.
        c.write(resize, b"{\"Width\":132,\"Height\":43}\n", false)
            .await;
        let r = c.read_to_end().await;
        assert_eq!(r.text(stdout), "132x43\n");
        assert_eq!(status(&r, error)["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn exec_backend_failure_is_an_internal_error() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["nope"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        let r = c.read_to_end().await;
        let s = status(&r, error);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "InternalError");
        assert!(s["message"].as_str().unwrap().contains("no such command"));
    })
    .await;
}

#[tokio::test]
async fn attach_streams_stdin_to_stdout_until_stdin_ends() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .attach_url(AttachRequest {
                container_id: "c1".into(),
                tty: false,
                stdin: true,
                stdout: true,
                stderr: true,
            })
            .unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        let stdin = c.open(&[("streamType", "stdin")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        // Interactive: the greeting comes before any input.
        let mut got = Received::default();
        while got.text(stdout) != "attached\n" {
            match c.rx.next().await.unwrap().unwrap() {
                Frame::Data {
                    stream_id, data, ..
                } => got
                    .data
                    .entry(stream_id)
                    .or_default()
                    .extend_from_slice(&data),
                other => panic!("unexpected {other:?}"),
            }
        }
        c.write(stdin, b"echo hello\n", true).await;
        let r = c.read_to_end().await;
        assert_eq!(r.text(stdout), "echo hello\n");
        assert_eq!(status(&r, error)["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn attach_failure_is_reported_on_the_error_stream() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .attach_url(AttachRequest {
                container_id: "gone".into(),
                stdout: true,
                ..Default::default()
            })
            .unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "stdout")]).await;
        let r = c.read_to_end().await;
        assert!(status(&r, error)["message"]
            .as_str()
            .unwrap()
            .contains("not running"));
    })
    .await;
}

#[tokio::test]
async fn pings_are_echoed() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["echo", "x"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        c.send(Frame::Ping { id: 1 }).await;
        loop {
            if let Frame::Ping { id } = c.rx.next().await.unwrap().unwrap() {
                assert_eq!(id, 1);
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn tokens_are_single_use_and_checked() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["echo"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        c.read_to_end().await;
        let upgrade = [
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ];
        // Used once: gone. An attach token is no exec token.
        assert_eq!(http_request(&url, "POST", &upgrade).await.0, 404);
        let attach = urls
            .attach_url(AttachRequest {
                container_id: "c1".into(),
                stdout: true,
                ..Default::default()
            })
            .unwrap();
        let wrong = attach.replace("/attach/", "/exec/");
        assert_eq!(http_request(&wrong, "POST", &upgrade).await.0, 404);
    })
    .await;
}

#[tokio::test]
async fn bad_handshakes_get_the_kubelets_answers() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["echo"])).unwrap();
        let (code, head, _) = http_request(&url, "POST", &[]).await;
        assert_eq!(code, 400, "{head}");
        let url = urls.exec_url(exec_req(&["echo"])).unwrap();
        let (code, head, _) = http_request(
            &url,
            "POST",
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "SPDY/3.1"),
                ("X-Stream-Protocol-Version", "v9.channel.k8s.io"),
            ],
        )
        .await;
        assert_eq!(code, 403, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("x-accepted-stream-protocol-versions: v4.channel.k8s.io"),
            "{head}"
        );
    })
    .await;
}

#[tokio::test]
async fn url_requests_are_validated_as_the_kubelet_does() {
    let urls = start().await;
    let bad = |r: Result<String, RequestError>| match r {
        Err(RequestError::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let mut req = exec_req(&["echo"]);
    req.container_id.clear();
    assert_eq!(bad(urls.exec_url(req)), "missing required container_id");
    let mut req = exec_req(&["echo"]);
    req.tty = true;
    assert_eq!(
        bad(urls.exec_url(req)),
        "tty and stderr cannot both be true"
    );
    let mut req = exec_req(&["echo"]);
    req.stdout = false;
    req.stderr = false;
    assert_eq!(
        bad(urls.exec_url(req)),
        "one of stdin, stdout, or stderr must be set"
    );
    assert_eq!(
        bad(urls.port_forward_url(PortForwardRequest::default())),
        "missing required pod_sandbox_id"
    );
    let url = urls.exec_url(exec_req(&["echo"])).unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/exec/"),
        "{url}"
    );
}

/// Garbage after the upgrade (random bytes, and valid frames with bytes
/// flipped): the connection ends and the server keeps serving.
#[tokio::test]
async fn hostile_spdy_sessions_end_without_hurting_the_server() {
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};
    bounded(async {
        let urls = start().await;
        let mut rng = StdRng::seed_from_u64(7);
        let mut valid = bytes::BytesMut::new();
        let mut codec = Codec::new();
        for f in [
            Frame::SynStream {
                stream_id: 1,
                flags: 0,
                headers: hs(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                flags: 0,
                headers: hs(&[("streamtype", "stdout")]),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"x"),
            },
        ] {
            tokio_util::codec::Encoder::encode(&mut codec, f, &mut valid).unwrap();
        }
        for i in 0..40 {
            let url = urls.exec_url(exec_req(&["echo", "x"])).unwrap();
            let (_, _, mut conn) = http_request(
                &url,
                "POST",
                &[
                    ("Connection", "Upgrade"),
                    ("Upgrade", "SPDY/3.1"),
                    ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
                ],
            )
            .await;
            let junk = if i % 2 == 0 {
                let mut v = valid.to_vec();
                for _ in 0..4 {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                v
            } else {
                let mut v = vec![0u8; 300];
                rng.fill_bytes(&mut v);
                v
            };
            let _ = conn.write_all(&junk).await;
            let _ = conn.shutdown().await;
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink).await;
        }
        // Still serving.
        let url = urls.exec_url(exec_req(&["echo", "alive"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        c.open(&[("streamType", "error")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        assert_eq!(c.read_to_end().await.text(stdout), "alive\n");
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_is_closed() {
    bounded(async {
        let urls = start_with_idle_timeout(Duration::from_millis(600)).await;
        let mut req = exec_req(&["cat"]);
        req.stdin = true;
        let url = urls.exec_url(req).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        c.open(&[("streamType", "error")]).await;
        let stdin = c.open(&[("streamType", "stdin")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        // Traffic keeps it open past the limit...
        for _ in 0..4 {
            c.write(stdin, b"x", false).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // ...silence ends it.
        let started = std::time::Instant::now();
        let r = c.read_to_end().await;
        assert!(r.goaway);
        assert_eq!(r.text(stdout), "xxxx");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_listening() {
    bounded(async {
        let server = StreamServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_until(Fake, async {
            let _ = stopped.await;
        }));
        // A connection that never sends a request does not hold it up.
        let _idle = TcpStream::connect(addr).await.unwrap();
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn streams_of_unknown_types_are_ignored_as_the_kubelet_does() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec_req(&["echo", "hi"])).unwrap();
        let (_, mut c) = SpdyClient::connect(&url, CLIENT_PROTOCOLS).await;
        let error = c.open(&[("streamType", "error")]).await;
        c.open(&[("streamType", "video")]).await;
        let stdout = c.open(&[("streamType", "stdout")]).await;
        c.open(&[("streamType", "stderr")]).await;
        let r = c.read_to_end().await;
        assert_eq!(r.text(stdout), "hi\n");
        assert_eq!(status(&r, error)["status"], "Success");
    })
    .await;
}
