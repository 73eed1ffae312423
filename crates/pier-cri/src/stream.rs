//! The streaming backend (`pier-cri-stream`): Exec and Attach over the
//! engine's exec and attach streams, PortForward into the pod's network
//! namespace.

use std::sync::Arc;

use pier_api::models::ExecConfig;
use pier_cri_stream::{
    AttachRequest, Backend, BackendError, ExecRequest, InStream, OutStream, PortStream, Streams,
};
use pier_engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::sandbox::SandboxRec;

pub(crate) struct StreamBackend {
    pub engine: Arc<Engine>,
}

/// Joins the client's streams to an engine stdio socket: stdin in (then a
/// half-close, the process's EOF), output out, demultiplexed unless a TTY.
async fn pump(
    sock: UnixStream,
    tty: bool,
    stdin: Option<InStream>,
    mut stdout: Option<OutStream>,
    mut stderr: Option<OutStream>,
) {
    let (mut r, mut w) = sock.into_split();
    let input = stdin.map(|mut i| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut i, &mut w).await;
            let _ = w.shutdown().await;
        })
    });
    if tty {
        if let Some(o) = stdout.as_mut() {
            let _ = tokio::io::copy(&mut r, o).await;
        }
    } else {
        let mut head = [0u8; 8];
        let mut buf = Vec::new();
        while r.read_exact(&mut head).await.is_ok() {
            let n = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
            buf.resize(n, 0);
            if r.read_exact(&mut buf).await.is_err() {
                break;
            }
            let out = if head[0] == 2 {
                stderr.as_mut()
            } else {
                stdout.as_mut()
            };
            if let Some(o) = out {
                let _ = o.write_all(&buf).await;
            }
        }
    }
    for o in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = o.shutdown().await;
    }
    if let Some(t) = input {
        t.abort();
    }
}

impl Backend for StreamBackend {
    async fn exec(&self, req: ExecRequest, s: Streams) -> Result<i32, BackendError> {
        let e = &self.engine;
        let id = e.create_exec(
            &req.container_id,
            ExecConfig {
                attach_stdin: Some(req.stdin),
                attach_stdout: Some(req.stdout),
                attach_stderr: Some(req.stderr),
                tty: Some(req.tty),
                cmd: Some(req.cmd.clone()),
                ..Default::default()
            },
        )?;
        let sock = e
            .start_exec(&id, pier_engine::ExecStart { detach: false })
            .await?
            .ok_or("exec gave no stream")?;
        if let Some(mut rx) = s.resize {
            let (e, id) = (e.clone(), id.clone());
            tokio::spawn(async move {
                while let Some(sz) = rx.recv().await {
                    let _ = e.resize_exec(&id, sz.height, sz.width).await;
                }
            });
        }
        pump(sock, req.tty, s.stdin, s.stdout, s.stderr).await;
        for _ in 0..500 {
            let i = e.execs().inspect(&id)?;
            if i.running != Some(true)
                && let Some(code) = i.exit_code
            {
                return Ok(code as i32);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err("exec did not report its exit".into())
    }

    async fn attach(&self, req: AttachRequest, s: Streams) -> Result<(), BackendError> {
        let e = &self.engine;
        let (tty, fut) = e.attach_container(
            &req.container_id,
            pier_engine::AttachOptions {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
            },
        )?;
        let sock = fut.await?;
        if let Some(mut rx) = s.resize {
            let (e, id) = (e.clone(), req.container_id.clone());
            tokio::spawn(async move {
                while let Some(sz) = rx.recv().await {
                    let _ = e.resize_container(&id, sz.height, sz.width).await;
                }
            });
        }
        pump(sock, tty, s.stdin, s.stdout, s.stderr).await;
        Ok(())
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
        mut stream: PortStream,
    ) -> Result<(), BackendError> {
        let list: Vec<(String, SandboxRec)> = self.engine.cri_list()?;
        let s = list
            .into_iter()
            .map(|(_, s)| s)
            .find(|s| s.id == pod_sandbox_id)
            .ok_or_else(|| format!("pod sandbox {pod_sandbox_id} not found"))?;
        let netns = (!s.host_net).then(|| s.ns_path("net"));
        // A thread of its own enters the pod's namespace: the socket stays
        // there, the thread ends.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let res = (|| -> std::io::Result<std::net::TcpStream> {
                if let Some(ns) = &netns {
                    let f = std::fs::File::open(ns)?;
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&f),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )?;
                }
                let c = std::net::TcpStream::connect(("127.0.0.1", port))
                    .or_else(|_| std::net::TcpStream::connect(("::1", port)))?;
                c.set_nonblocking(true)?;
                Ok(c)
            })();
            let _ = tx.send(res);
        });
        let conn = rx.await.map_err(|_| "port forward thread died")??;
        let mut conn = tokio::net::TcpStream::from_std(conn)?;
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
        Ok(())
    }
}
