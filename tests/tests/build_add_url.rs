//! `ADD <url>` in a build: the daemon downloads the file itself (the HTTP client
//! of pier-build), from a server on the loopback of the daemon's namespace.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use pier_tests::{OutputExt, TestDaemon};

const BODY: &str = "hello from loopback\n";
const BODY_SHA256: &str = "sha256:549ed6d2e9a81a14207ce0d780e0c581528305f798f43a706cfa1f0730501960";

/// A one-file HTTP server listening on 127.0.0.1 inside a daemon's namespace.
/// `/hello.txt` answers [`BODY`], any other path 404. Request lines are kept.
struct LoopbackServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    fn start(d: &TestDaemon) -> Self {
        let ns_path = format!("/run/netns/{}", d.netns);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (reqs, halt) = (requests.clone(), stop.clone());
        // setns changes only this thread's namespace; the listener stays in the
        // daemon's namespace for as long as the thread keeps it.
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&ns_path).expect("open netns");
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            let l = TcpListener::bind("127.0.0.1:0").expect("bind in netns");
            l.set_nonblocking(true).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            while !halt.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut r = BufReader::new(s);
                        let mut head = Vec::new();
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                break;
                            }
                            head.push(line.trim_end().to_string());
                        }
                        let line = head.first().cloned().unwrap_or_default();
                        let found = line.starts_with("GET /hello.txt ");
                        reqs.lock().unwrap().push(head.join("\n"));
                        let (status, body) = if found {
                            ("200 OK", BODY)
                        } else {
                            ("404 Not Found", "not here\n")
                        };
                        let mut s = r.into_inner();
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server port");
        LoopbackServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops the thread, so nothing of the test holds the namespace any more.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A context directory with one Dockerfile, removed when dropped.
struct Context(std::path::PathBuf);

impl Context {
    fn new(dockerfile: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pier-addurl-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        Context(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn add_url_downloads_from_the_daemons_loopback() {
    let d = TestDaemon::with_busybox();
    let mut srv = LoopbackServer::start(&d);

    // Into a directory (the name comes from the URL) and onto a file name, with
    // Docker's mode for downloaded files; --checksum that matches passes.
    let c = Context::new(&format!(
        "FROM busybox\n\
         ADD {url} /data/\n\
         ADD --checksum={BODY_SHA256} {url} /renamed.txt\n",
        url = srv.url("/hello.txt")
    ));
    d.pier_ok(&["build", "-q", "-t", "addurl", c.path()]);
    let out = d.pier_ok(&[
        "run",
        "--rm",
        "addurl",
        "sh",
        "-c",
        "cat /data/hello.txt /renamed.txt; stat -c '%a %u' /data/hello.txt /renamed.txt",
    ]);
    assert_eq!(out, format!("{BODY}{BODY}600 0\n600 0\n"));
    let reqs = srv.requests();
    assert!(!reqs.is_empty(), "the daemon never asked");
    assert!(
        reqs.iter()
            .all(|r| r.starts_with("GET /hello.txt HTTP/1.1")),
        "{reqs:?}"
    );

    // A checksum that does not match fails the build and makes no image.
    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let c = Context::new(&format!(
        "FROM busybox\nADD --checksum={wrong} {} /x\n",
        srv.url("/hello.txt")
    ));
    let o = d.pier(&["build", "--no-cache", "-t", "addurl-bad", c.path()]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    assert!(o.err().contains("digest mismatch"), "{}", o.describe());

    // A 404 fails the build and says so.
    let missing = srv.url("/missing.txt");
    let c = Context::new(&format!("FROM busybox\nADD {missing} /x\n"));
    let o = d.pier(&["build", "-t", "addurl-bad", c.path()]);
    assert_ne!(o.code(), 0, "{}", o.describe());
    let err = o.err();
    assert!(
        err.contains(&format!("failed to download {missing}")) && err.contains("404"),
        "{}",
        o.describe()
    );
    assert_eq!(d.pier(&["image", "inspect", "addurl-bad"]).code(), 1);

    srv.stop();
    d.pier_ok(&["rmi", "addurl"]);
    d.assert_clean();
}
