//! `pier system dial-stdio`: the far end of `-H ssh://`. The CLI on another
//! host runs it through ssh and speaks HTTP over its stdin and stdout, which
//! are copied to and from one connection to the daemon, as
//! `docker system dial-stdio` does (so docker's CLI can use it too).

use anyhow::{Context, Result};
use tokio::io::{AsyncWriteExt, WriteHalf};

use pier_client::{ConnectOptions, Io};

pub async fn dial_stdio(conn: &ConnectOptions) -> Result<i32> {
    let client = pier_client::connect(conn).await?;
    let stream = client.dial().await?;
    let (mut from_daemon, to_daemon) = tokio::io::split(stream);
    let upstream = tokio::spawn(stdin_to(to_daemon));
    let mut stdout = tokio::io::stdout();
    // The daemon's side ending ends the session at once (the client has its
    // answer); our stdin ending only half-closes, and the answer still comes.
    let copied = tokio::io::copy(&mut from_daemon, &mut stdout).await;
    let _ = stdout.flush().await;
    upstream.abort();
    copied.context("copying from the daemon to stdout")?;
    Ok(0)
}

async fn stdin_to(mut to_daemon: WriteHalf<Box<dyn Io>>) -> Result<()> {
    let mut stdin = tokio::io::stdin();
    tokio::io::copy(&mut stdin, &mut to_daemon)
        .await
        .context("copying from stdin to the daemon")?;
    // The daemon sees the end of the request stream (EOF of an attach's stdin).
    to_daemon
        .shutdown()
        .await
        .context("half-closing the daemon connection")?;
    Ok(())
}
