//! Exec and attach over websockets, as `crictl exec --transport websocket`
//! (client-go's websocket executor, `v5.channel.k8s.io`).

use serde_json::Value;

use super::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Every message per channel until the server closes, which must be a
/// normal closure: client-go fails the session on any other.
async fn drain(ws: &mut Ws) -> HashMap<u8, Vec<u8>> {
    let mut out: HashMap<u8, Vec<u8>> = HashMap::new();
    while let Some(m) = ws.next().await {
        match m {
            Ok(Message::Binary(b)) => {
                let (ch, rest) = b.split_first().expect("a channel byte");
                out.entry(*ch).or_default().extend_from_slice(rest);
            }
            Ok(Message::Close(frame)) => {
                let code = frame.map(|f| u16::from(f.code));
                assert_eq!(code, Some(1000), "not a normal closure");
                break;
            }
            Err(e) => panic!("websocket error: {e}"),
            Ok(_) => {}
        }
    }
    out
}

fn exec(cmd: &[&str], stdin: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

#[tokio::test]
async fn v5_exec_echo_and_its_status() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .exec_url(exec(&["echo", "hello"], false, false))
            .unwrap();
        let (mut ws, proto) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        assert_eq!(proto, "v5.channel.k8s.io");
        // The kubelet's first message: empty, on stdout.
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..], &[1]),
            other => panic!("unexpected {other:?}"),
        }
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"hello\n");
        let s: Value = serde_json::from_slice(&got[&3]).unwrap();
        assert_eq!(s["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn v5_exec_exit_code_3() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["exit", "3"], false, false)).unwrap();
        let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        let got = drain(&mut ws).await;
        assert_eq!(got[&2], b"bye\n");
        let s: Value = serde_json::from_slice(&got[&3]).unwrap();
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    })
    .await;
}

#[tokio::test]
async fn v5_close_signal_ends_stdin() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["cat"], true, false)).unwrap();
        let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws.send(Message::binary(b"\x00abc".to_vec())).await.unwrap();
        ws.send(Message::binary(b"\x00def".to_vec())).await.unwrap();
        // client-go's stream Close(): [255, channel].
        ws.send(Message::binary(vec![255u8, 0])).await.unwrap();
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"abcdef");
        let s: Value = serde_json::from_slice(&got[&3]).unwrap();
        assert_eq!(s["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn v5_tty_resize_channel() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["size"], true, true)).unwrap();
        let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws.send(Message::binary(
            b"\x04{\"Width\":90,\"Height\":30}\n".to_vec(),
        ))
        .await
        .unwrap();
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"90x30\n");
        assert!(!got.contains_key(&2), "no stderr with a TTY");
    })
    .await;
}

#[tokio::test]
async fn v4_attach() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .attach_url(AttachRequest {
                container_id: "c1".into(),
                stdout: true,
                ..Default::default()
            })
            .unwrap();
        // A client offering v4 first gets v4.
        let (mut ws, proto) = ws_connect(&url, "v4.channel.k8s.io, v5.channel.k8s.io")
            .await
            .unwrap();
        assert_eq!(proto, "v4.channel.k8s.io");
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"attached\n");
        let s: Value = serde_json::from_slice(&got[&3]).unwrap();
        assert_eq!(s["status"], "Success");
    })
    .await;
}

#[tokio::test]
async fn unknown_subprotocols_are_refused() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["echo"], false, false)).unwrap();
        let err = ws_connect(&url, "v9.channel.k8s.io").await.unwrap_err();
        assert!(err.to_string().contains("400"), "{err}");
    })
    .await;
}

/// Random messages on a session: no panic, and the server serves on.
#[tokio::test]
async fn hostile_messages_are_survived() {
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};
    bounded(async {
        let urls = start().await;
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..10 {
            let url = urls.exec_url(exec(&["cat"], true, false)).unwrap();
            let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
            for _ in 0..20 {
                let mut v = vec![0u8; rng.random_range(0..64)];
                rng.fill_bytes(&mut v);
                if ws.send(Message::binary(v)).await.is_err() {
                    break;
                }
            }
            let _ = ws.send(Message::binary(vec![255u8, 0])).await;
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
        let url = urls
            .exec_url(exec(&["echo", "alive"], false, false))
            .unwrap();
        let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        assert_eq!(drain(&mut ws).await[&1], b"alive\n");
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_is_closed_normally() {
    bounded(async {
        let urls = start_with_idle_timeout(Duration::from_millis(600)).await;
        let url = urls.exec_url(exec(&["cat"], true, false)).unwrap();
        let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
        ws.send(Message::binary(b"\x00hi".to_vec())).await.unwrap();
        let started = std::time::Instant::now();
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"hi");
        assert!(started.elapsed() < Duration::from_secs(5));
    })
    .await;
}

#[tokio::test]
async fn v4_base64_carries_text_both_ways() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["cat"], true, false)).unwrap();
        let (mut ws, proto) = ws_connect(&url, "v4.base64.channel.k8s.io").await.unwrap();
        assert_eq!(proto, "v4.base64.channel.k8s.io");
        ws.send(Message::text(format!("0{}", STANDARD.encode("abc"))))
            .await
            .unwrap();
        // Bad base64 is dropped, the session goes on.
        ws.send(Message::text("0!!!")).await.unwrap();
        let mut stdout = Vec::new();
        let mut status = None;
        // No close signal in v4: the client closes when it has its output.
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let (ch, payload) = t.as_str().split_at(1);
            let bytes = STANDARD.decode(payload).unwrap();
            match ch {
                "1" => stdout.extend_from_slice(&bytes),
                "3" => status = Some(bytes),
                _ => {}
            }
            if stdout == b"abc" {
                break;
            }
        }
        assert_eq!(stdout, b"abc");
        assert_eq!(status, None, "cat runs until stdin ends");
    })
    .await;
}

#[tokio::test]
async fn pre_v4_channels_get_the_error_as_text() {
    bounded(async {
        let urls = start().await;
        let url = urls.exec_url(exec(&["exit", "3"], false, false)).unwrap();
        let (mut ws, proto) = ws_connect(&url, "channel.k8s.io").await.unwrap();
        assert_eq!(proto, "channel.k8s.io");
        let got = drain(&mut ws).await;
        let text = String::from_utf8(got[&3].clone()).unwrap();
        assert!(text.contains("exit code 3"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn a_client_naming_no_subprotocol_gets_binary_channels() {
    bounded(async {
        let urls = start().await;
        let url = urls
            .exec_url(exec(&["echo", "plain"], false, false))
            .unwrap();
        let req = url.replacen("http://", "ws://", 1);
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert!(resp.headers().get("sec-websocket-protocol").is_none());
        let got = drain(&mut ws).await;
        assert_eq!(got[&1], b"plain\n");
        // Success is silence before v4.
        assert!(!got.contains_key(&3));
    })
    .await;
}
