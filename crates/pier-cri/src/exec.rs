//! ExecSync: an engine exec whose output is collected.

use std::time::Duration;

use pier_api::models::ExecConfig;
use tokio::io::AsyncReadExt;
use tonic::Status;

use crate::convert::status_of;
use crate::proto;
use crate::Cri;

/// Splits Docker's multiplexed stream (8-byte headers) into stdout and stderr.
pub(crate) fn demux(mut buf: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while buf.len() >= 8 {
        let n = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        let end = (8 + n).min(buf.len());
        let payload = &buf[8..end];
        if buf[0] == 2 {
            err.extend_from_slice(payload);
        } else {
            out.extend_from_slice(payload);
        }
        buf = &buf[end..];
    }
    (out, err)
}

impl Cri {
    pub(crate) async fn exec_sync(
        &self,
        req: proto::ExecSyncRequest,
    ) -> Result<proto::ExecSyncResponse, Status> {
        let rec = self.must_container(&req.container_id)?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd must be set"));
        }
        let id = self
            .engine
            .create_exec(
                &rec.id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(req.cmd.clone()),
                    ..Default::default()
                },
            )
            .map_err(status_of)?;
        let run = async {
            let stream = self
                .engine
                .start_exec(&id, pier_engine::ExecStart { detach: false })
                .await
                .map_err(status_of)?;
            let mut buf = Vec::new();
            if let Some(mut s) = stream {
                s.read_to_end(&mut buf)
                    .await
                    .map_err(|e| Status::internal(format!("exec output: {e}")))?;
            }
            // The exit is recorded just after the output ends.
            for _ in 0..200 {
                let i = self.engine.execs().inspect(&id).map_err(status_of)?;
                if i.running != Some(true) && i.exit_code.is_some() {
                    let (stdout, stderr) = demux(&buf);
                    return Ok(proto::ExecSyncResponse {
                        stdout,
                        stderr,
                        exit_code: i.exit_code.unwrap_or(0) as i32,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(Status::internal("exec did not report its exit"))
        };
        if req.timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(req.timeout as u64), run).await {
                Ok(r) => r,
                Err(_) => {
                    // The process goes with its deadline, as containerd kills it.
                    if let Ok(i) = self.engine.execs().inspect(&id)
                        && let Some(p) =
                            i.pid.and_then(|p| rustix::process::Pid::from_raw(p as i32))
                    {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                    Err(Status::deadline_exceeded(format!(
                        "command {:?} timed out after {}s",
                        req.cmd, req.timeout
                    )))
                }
            }
        } else {
            run.await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn demux_splits_streams() {
        let mut b = vec![1, 0, 0, 0, 0, 0, 0, 2];
        b.extend_from_slice(b"hi");
        b.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 1]);
        b.push(b'e');
        let (o, e) = super::demux(&b);
        assert_eq!(o, b"hi");
        assert_eq!(e, b"e");
    }
}
