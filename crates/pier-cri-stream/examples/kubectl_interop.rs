//! A check of the streaming server against a real client-go client
//! (kubectl), no cluster needed: a stand-in apiserver answers kubectl's pod
//! lookup and hands its exec/attach/portforward connections to the
//! streaming server, as the real apiserver proxies them to a kubelet.
//! Exec runs the command on this host (no TTY); port forwarding reaches
//! 127.0.0.1.
//!
//! ```text
//! cargo run -p pier-cri-stream --example kubectl_interop -- 127.0.0.1:18080 &
//! kubectl --server http://127.0.0.1:18080 exec p -- sh -c 'echo hi; exit 3'; echo $?
//! KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl --server ... exec -i p -- cat
//! kubectl --server http://127.0.0.1:18080 port-forward p 9000:8000
//! ```

use std::process::Stdio;

use pier_cri_stream::{
    AttachRequest, Backend, BackendError, ExecRequest, PortForwardRequest, PortStream,
    StreamHandle, StreamServer, Streams,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Host;

impl Backend for Host {
    async fn exec(&self, req: ExecRequest, mut s: Streams) -> Result<i32, BackendError> {
        let (prog, args) = req.cmd.split_first().ok_or("empty command")?;
        // No pty here: show the terminal size the client sent instead.
        if let (Some(sizes), Some(out)) = (s.resize.as_mut(), s.stdout.as_mut()) {
            let first = tokio::time::timeout(std::time::Duration::from_secs(2), sizes.recv()).await;
            if let Ok(Some(size)) = first {
                let line = format!("terminal {}x{}\r\n", size.width, size.height);
                out.write_all(line.as_bytes()).await?;
            }
        }
        let mut child = tokio::process::Command::new(prog)
            .args(args)
            .stdin(if s.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(mut from), Some(mut to)) = (s.stdin, child.stdin.take()) {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from, &mut to).await;
            });
        }
        let mut out = child.stdout.take().ok_or("no stdout")?;
        let mut err = child.stderr.take().ok_or("no stderr")?;
        let copy_out = async {
            match s.stdout {
                Some(mut w) => tokio::io::copy(&mut out, &mut w).await.map(drop),
                None => tokio::io::copy(&mut out, &mut tokio::io::sink())
                    .await
                    .map(drop),
            }
        };
        let copy_err = async {
            match s.stderr {
                Some(mut w) => tokio::io::copy(&mut err, &mut w).await.map(drop),
                None => tokio::io::copy(&mut err, &mut tokio::io::sink())
                    .await
                    .map(drop),
            }
        };
        let _ = tokio::join!(copy_out, copy_err);
        Ok(child.wait().await?.code().unwrap_or(255))
    }

    async fn attach(&self, _req: AttachRequest, mut s: Streams) -> Result<(), BackendError> {
        let mut out = s.stdout.take().ok_or("attach needs stdout")?;
        out.write_all(b"attached: type lines, they come back\n")
            .await?;
        if let Some(mut input) = s.stdin.take() {
            tokio::io::copy(&mut input, &mut out).await?;
        }
        Ok(())
    }

    async fn port_forward(
        &self,
        _sandbox: String,
        port: u16,
        mut stream: PortStream,
    ) -> Result<(), BackendError> {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
        tokio::io::copy_bidirectional(&mut conn, &mut stream).await?;
        Ok(())
    }
}

fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
        .collect()
}

/// A query value: `+` is a space, then percent-decoding.
fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(&v.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

const VERSION: &str = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0"}"#;
const API: &str = r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}"#;
const APIS: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#;
const API_V1: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[
{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},
{"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]},
{"name":"pods/attach","singularName":"","namespaced":true,"kind":"PodAttachOptions","verbs":["create","get"]},
{"name":"pods/portforward","singularName":"","namespaced":true,"kind":"PodPortForwardOptions","verbs":["create","get"]}]}"#;
const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running"}}"#;

async fn handle(mut client: TcpStream, urls: StreamHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = client.read_u8().await?;
        head.push(b);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let flag = |k: &str| {
        query_values(query, k)
            .first()
            .is_some_and(|v| v == "true" || v == "1")
    };
    eprintln!("{method} {target}");
    let url = match path.rsplit('/').next() {
        Some("exec") => urls.exec_url(ExecRequest {
            container_id: "c".into(),
            cmd: query_values(query, "command"),
            tty: flag("tty"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
        }),
        Some("attach") => urls.attach_url(AttachRequest {
            container_id: "c".into(),
            tty: flag("tty"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
        }),
        Some("portforward") => urls.port_forward_url(PortForwardRequest {
            pod_sandbox_id: "p".into(),
            port: vec![],
        }),
        _ => {
            // kubectl's discovery, then its pod lookup.
            let body = match path {
                "/version" => VERSION,
                "/api" => API,
                "/apis" => APIS,
                "/api/v1" => API_V1,
                p if p.ends_with("/pods/p") => POD,
                _ => "{}",
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return client.write_all(resp.as_bytes()).await;
        }
    };
    let url = url.map_err(std::io::Error::other)?;
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (host, new_path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut upstream = TcpStream::connect(host).await?;
    let mut new_head = format!("{method} {new_path} HTTP/1.1\r\n");
    for line in text.lines().skip(1) {
        if !line.is_empty() {
            new_head.push_str(line);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("\r\n");
    upstream.write_all(new_head.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let server = StreamServer::bind("127.0.0.1:0".parse()?).await?;
    let urls = server.handle();
    tokio::spawn(server.serve(Host));
    let listener = TcpListener::bind(&api).await?;
    eprintln!("stand-in apiserver on http://{api}");
    loop {
        let (c, _) = listener.accept().await?;
        let urls = urls.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(c, urls).await {
                eprintln!("connection: {e}");
            }
        });
    }
}
