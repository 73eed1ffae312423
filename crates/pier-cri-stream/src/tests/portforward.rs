//! Port forwarding to a loopback TCP echo server, as `crictl port-forward`
//! drives it: SPDY (`portforward.k8s.io`) and SPDY tunnelled in a websocket.

use tokio::net::TcpListener;

use super::*;
use crate::PortForwardRequest;

/// Echoes every connection back, upper-cased so an echo is not a loop.
async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let up = buf[..n].to_ascii_uppercase();
                    if c.write_all(&up).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn pf_url(urls: &StreamHandle) -> String {
    urls.port_forward_url(PortForwardRequest {
        pod_sandbox_id: "sb1".into(),
        port: vec![],
    })
    .unwrap()
}

/// One forwarded connection as client-go opens it: error stream (closed
/// at once by the client), then the data stream with the same request id.
async fn open_pair(c: &mut SpdyClient, port: u16, request: u32) -> (u32, u32) {
    let port = port.to_string();
    let req = request.to_string();
    let error = c
        .open(&[
            ("streamType", "error"),
            ("port", &port),
            ("requestID", &req),
        ])
        .await;
    c.write(error, b"", true).await;
    let data = c
        .open(&[("streamType", "data"), ("port", &port), ("requestID", &req)])
        .await;
    (error, data)
}

async fn check_forwarding(mut c: SpdyClient, port: u16) {
    // Two connections at once, interleaved.
    let (e1, d1) = open_pair(&mut c, port, 0).await;
    let (e2, d2) = open_pair(&mut c, port, 1).await;
    c.write(d1, b"hello ", false).await;
    c.write(d2, b"other", true).await;
    c.write(d1, b"world", true).await;
    let mut r = Received::default();
    for id in [d1, d2, e1, e2] {
        c.read_until_fin(id, &mut r).await;
    }
    assert_eq!(r.text(d1), "HELLO WORLD");
    assert_eq!(r.text(d2), "OTHER");
    assert_eq!(r.text(e1), "");
    assert_eq!(r.text(e2), "");
}

#[tokio::test]
async fn spdy_forwards_to_the_port_both_ways() {
    bounded(async {
        let port = echo_server().await;
        let urls = start().await;
        let (protocol, c) = SpdyClient::connect(&pf_url(&urls), &["portforward.k8s.io"]).await;
        assert_eq!(protocol, "portforward.k8s.io");
        check_forwarding(c, port).await;
    })
    .await;
}

#[tokio::test]
async fn websocket_tunnelled_spdy_forwards_too() {
    bounded(async {
        let port = echo_server().await;
        let urls = start().await;
        let (ws, proto) = ws_connect(&pf_url(&urls), "SPDY/3.1+portforward.k8s.io")
            .await
            .unwrap();
        assert_eq!(proto, "SPDY/3.1+portforward.k8s.io");
        check_forwarding(ws_tunnel_client(ws), port).await;
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_reported_on_the_error_stream() {
    bounded(async {
        // A port nobody listens on: bind, note it, close.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let urls = start().await;
        let (_, mut c) = SpdyClient::connect(&pf_url(&urls), &["portforward.k8s.io"]).await;
        let (error, data) = open_pair(&mut c, port, 0).await;
        let mut r = Received::default();
        c.read_until_fin(error, &mut r).await;
        c.read_until_fin(data, &mut r).await;
        let msg = r.text(error);
        assert!(
            msg.starts_with(&format!("error forwarding port {port} to pod sb1, uid : ")),
            "{msg}"
        );
        // A bad port header gets the kubelet's message.
        let e = c
            .open(&[
                ("streamType", "error"),
                ("port", "http"),
                ("requestID", "1"),
            ])
            .await;
        c.open(&[("streamType", "data"), ("port", "http"), ("requestID", "1")])
            .await;
        c.read_until_fin(e, &mut r).await;
        assert!(r.text(e).contains("unable to parse \"http\" as a port"));
    })
    .await;
}

#[tokio::test]
async fn exec_protocols_are_refused_on_port_forward() {
    bounded(async {
        let urls = start().await;
        let (code, head, _) = http_request(
            &pf_url(&urls),
            "POST",
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "SPDY/3.1"),
                ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
            ],
        )
        .await;
        assert_eq!(code, 403, "{head}");
    })
    .await;
}

#[tokio::test]
async fn a_second_stream_of_a_type_is_refused_on_the_error_stream() {
    bounded(async {
        let port = echo_server().await;
        let urls = start().await;
        let (_, mut c) = SpdyClient::connect(&pf_url(&urls), &["portforward.k8s.io"]).await;
        let p = port.to_string();
        let error = c
            .open(&[("streamType", "error"), ("port", &p), ("requestID", "9")])
            .await;
        let second = c
            .open(&[("streamType", "error"), ("port", &p), ("requestID", "9")])
            .await;
        let mut r = Received::default();
        c.read_until_fin(second, &mut r).await;
        let data = c
            .open(&[("streamType", "data"), ("port", &p), ("requestID", "9")])
            .await;
        c.write(data, b"still works", true).await;
        c.read_until_fin(data, &mut r).await;
        c.read_until_fin(error, &mut r).await;
        assert_eq!(
            r.text(error),
            "error processing stream for request 9: error stream already assigned"
        );
        assert_eq!(r.text(data), "STILL WORKS");
    })
    .await;
}
