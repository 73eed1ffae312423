//! `pier kube play` / `kube down` / `kube generate` against a real daemon: a
//! two-container pod sharing an emptyDir and reading a ConfigMap (env and a
//! mounted file), reached on its hostPort; the generated YAML validated against
//! the Kubernetes API schema (kubernetes-validate, installed by .ci/run) and
//! played again; `--down` leaving nothing; a Deployment's replicas; Jobs;
//! warnings for what Pier does not honour; `--build`; compose projects.

use pier_tests::cmd;
use pier_tests::{wait_until, Input, OutputExt, TestDaemon, CMD_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A directory of YAML (and image directories), removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("pier-kube-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, f: &str, text: &str) -> String {
        let p = self.0.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kube(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.pier_cmd();
    c.arg("kube").args(args);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT * 3);
    eprintln!("$ pier kube {}\n{}", args.join(" "), o.describe());
    o
}

fn kube_ok(d: &TestDaemon, args: &[&str]) -> Output {
    let o = kube(d, args);
    assert!(
        o.status.success(),
        "pier kube {args:?}: {}\n--- daemon log ---\n{}",
        o.describe(),
        d.log_tail(40)
    );
    o
}

fn get(d: &TestDaemon, port: u16, path: &str) -> Option<String> {
    let mut c = d.in_netns("curl");
    c.args([
        "-fsS",
        "--max-time",
        "3",
        &format!("http://127.0.0.1:{port}{path}"),
    ]);
    let o = cmd::run(c, Input::Null, CMD_TIMEOUT);
    o.status.success().then(|| o.out())
}

/// Waits until `path` on the published port answers `want`.
fn wait_for(d: &TestDaemon, port: u16, path: &str, want: &str) {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(20), || {
        last = get(d, port, path);
        last.as_deref() == Some(want)
    });
    assert!(
        ok,
        "GET {path} on {port}: {last:?}, wanted {want:?}\n{}",
        d.log_tail(30)
    );
}

/// The offline validator of Kubernetes YAML against the API schema.
fn validator() -> PathBuf {
    let p = std::env::var_os("PIER_KUBE_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pier/kube-venv/bin/kubernetes-validate"));
    assert!(
        p.is_file(),
        "{} not found: .ci/run installs kubernetes-validate there (or set PIER_KUBE_VALIDATE)",
        p.display()
    );
    p
}

fn validate(file: &Path) {
    let o = cmd::run(
        {
            let mut c = Command::new(validator());
            c.arg("--strict").arg(file);
            c
        },
        Input::Null,
        CMD_TIMEOUT,
    );
    assert!(
        o.status.success(),
        "kubernetes-validate {}: {}",
        file.display(),
        o.describe()
    );
    assert!(!o.out().contains("ERROR"), "{}", o.describe());
}

/// Nothing of the daemon's objects left: no containers, volumes or networks
/// beyond the three built-in ones.
fn assert_empty(d: &TestDaemon) {
    assert_eq!(d.pier_ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.pier_ok(&["volume", "ls", "-q"]).trim(), "");
    assert_eq!(
        d.pier_sorted(&["network", "ls", "--format", "{{.Name}}"]),
        "bridge,host,none"
    );
}

const POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: site
data:
  GREETING: hello from the configmap
  index.html: "<h1>index from the configmap</h1>"
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  volumes:
    - name: shared
      emptyDir: {}
    - name: config
      configMap:
        name: site
  containers:
    - name: server
      image: busybox
      command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
      ports:
        - containerPort: 8080
          hostPort: 18480
      volumeMounts:
        - name: shared
          mountPath: /www
    - name: writer
      image: busybox
      command: ["sh", "-c"]
      args:
        - |
          cp /config/index.html /www/index.html
          echo "$GREETING" > /www/greeting.txt
          while true; do
            wget -qO /www/sibling.txt http://localhost:8080/index.html
            sleep 1
          done
      env:
        - name: GREETING
          valueFrom:
            configMapKeyRef:
              name: site
              key: GREETING
      volumeMounts:
        - name: shared
          mountPath: /www
        - name: config
          mountPath: /config
"#;

#[test]
fn pod_with_emptydir_and_configmap_plays_generates_and_replays() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new("pod");
    let file = dir.write("pod.yaml", POD);

    let o = kube_ok(&d, &["play", &file]);
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Pod:");
    assert_eq!(lines[2], "Containers:");
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        d.pier_sorted(&["ps", "--format", "{{.Names}}"]),
        "web-infra,web-server,web-writer"
    );
    let infra = d.inspect("web-infra");
    assert!(infra["Id"].as_str().unwrap().starts_with(lines[1]));

    // The ConfigMap as a file and as env, through the shared emptyDir, on the hostPort.
    wait_for(
        &d,
        18480,
        "/index.html",
        "<h1>index from the configmap</h1>",
    );
    wait_for(&d, 18480, "/greeting.txt", "hello from the configmap\n");
    // `localhost` in one container reaches its sibling.
    wait_for(
        &d,
        18480,
        "/sibling.txt",
        "<h1>index from the configmap</h1>",
    );
    let writer = d.inspect("web-writer");
    assert_eq!(
        writer["HostConfig"]["NetworkMode"].as_str().unwrap(),
        format!("container:{}", infra["Id"].as_str().unwrap())
    );
    assert_eq!(writer["Config"]["Labels"]["io.pier.kube.pod"], "web");
    // Every container of the pod answers to the pod's hostname.
    assert_eq!(d.pier_ok(&["exec", "web-writer", "hostname"]), "web\n");
    let mounts = writer["Mounts"].as_array().unwrap();
    let config = mounts
        .iter()
        .find(|m| m["Destination"] == "/config")
        .unwrap();
    assert_eq!(config["RW"], false, "a ConfigMap volume is read-only");

    // Playing it again is refused while the pod exists.
    let again = kube(&d, &["play", &file]);
    assert_eq!(again.status.code(), Some(125));
    assert!(
        again.err().contains("already exists"),
        "{}",
        again.describe()
    );

    // Generate, validate offline against the Kubernetes schema.
    let yaml = kube_ok(&d, &["generate", "-s", "web-server"]).out();
    let gen_file = dir.0.join("generated.yaml");
    std::fs::write(&gen_file, &yaml).unwrap();
    validate(&gen_file);
    for want in [
        "kind: Pod",
        "kind: Service",
        "kind: ConfigMap",
        "hostPort: 18480",
        "emptyDir: {}",
    ] {
        assert!(yaml.contains(want), "{want:?} missing in:\n{yaml}");
    }
    // Containers in the YAML's order; what the image says left out.
    let (server, writer) = (
        yaml.find("- name: server").unwrap(),
        yaml.find("- name: writer").unwrap(),
    );
    assert!(server < writer, "{yaml}");
    assert!(!yaml.contains("workingDir"), "{yaml}");
    for (ty, kind) in [
        ("deployment", "Deployment"),
        ("daemonset", "DaemonSet"),
        ("job", "Job"),
    ] {
        let out = kube_ok(&d, &["generate", "--type", ty, "web-writer"]).out();
        let f = dir.0.join(format!("{ty}.yaml"));
        std::fs::write(&f, &out).unwrap();
        validate(&f);
        assert!(out.contains(&format!("kind: {kind}\n")), "{out}");
    }

    // --down removes the pod, its volumes, and nothing else stays.
    let down = kube_ok(&d, &["play", "--down", &file]).out();
    assert!(down.starts_with("Pods stopped:\n"), "{down}");
    assert!(down.contains("web-shared"), "{down}");
    assert_empty(&d);

    // The generated YAML plays back to the same pod.
    kube_ok(&d, &["play", gen_file.to_str().unwrap()]);
    wait_for(
        &d,
        18480,
        "/index.html",
        "<h1>index from the configmap</h1>",
    );
    wait_for(&d, 18480, "/greeting.txt", "hello from the configmap\n");
    wait_for(
        &d,
        18480,
        "/sibling.txt",
        "<h1>index from the configmap</h1>",
    );
    kube_ok(&d, &["down", gen_file.to_str().unwrap()]);
    assert_empty(&d);
    d.assert_clean();
}

#[test]
fn deployment_replicas_job_and_warnings() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new("dep");
    let file = dir.write(
        "all.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dep
spec:
  replicas: 2
  selector:
    matchLabels: {app: dep}
  template:
    metadata:
      labels: {app: dep}
    spec:
      nodeSelector: {disk: ssd}
      containers:
        - name: app
          image: busybox
          command: ["sleep", "600"]
          lifecycle:
            preStop:
              exec: {command: ["true"]}
          resources:
            limits: {memory: 64Mi, cpu: 500m}
          securityContext:
            runAsUser: 1000
            runAsGroup: 1000
            readOnlyRootFilesystem: true
            capabilities:
              drop: [NET_RAW]
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  token: s3cret
---
apiVersion: batch/v1
kind: Job
metadata:
  name: once
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox
          command: ["sh", "-c", "test \"$TOKEN\" = s3cret"]
          env:
            - name: TOKEN
              valueFrom:
                secretKeyRef: {name: creds, key: token}
"#,
    );
    let o = kube_ok(&d, &["play", &file]);
    let err = o.err();
    for w in [
        "deployment/dep: spec.template.spec.nodeSelector: not supported by pier kube play, ignored",
        "deployment/dep: spec.template.spec.containers[0].lifecycle: not supported by pier kube play, ignored",
        "Job once: completed",
    ] {
        assert!(err.contains(w), "missing {w:?} in:\n{err}");
    }
    assert_eq!(
        d.pier_sorted(&["ps", "--format", "{{.Names}}"]),
        "dep-pod-1-app,dep-pod-1-infra,dep-pod-2-app,dep-pod-2-infra"
    );
    let app = d.inspect("dep-pod-2-app");
    assert_eq!(app["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(app["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(app["HostConfig"]["ReadonlyRootfs"], true);
    assert_eq!(app["HostConfig"]["CapDrop"][0], "NET_RAW");
    assert_eq!(app["Config"]["User"], "1000:1000");
    assert_eq!(app["Config"]["Labels"]["io.pier.kube.kind"], "Deployment");
    let job = d.inspect("once-pod-main");
    assert_eq!(job["State"]["ExitCode"], 0);

    kube_ok(&d, &["play", "--down", &file]);
    assert_empty(&d);

    // A failing Job fails the play.
    let bad = dir.write(
        "bad.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - {name: main, image: busybox, command: [sh, -c, 'exit 3']}\n",
    );
    let o = kube(&d, &["play", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", o.describe());
    assert!(
        o.err()
            .contains("Job bad: container main failed with exit code 3"),
        "{}",
        o.describe()
    );
    kube_ok(&d, &["down", &bad]);
    assert_empty(&d);

    // OnFailure: the failed first try is retried (backoffLimit), the Job completes.
    let retry = dir.write(
        "retry.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: retry}\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: OnFailure\n      containers:\n        - {name: main, image: busybox, command: [sh, -c, 'test -f /tmp/tried || { touch /tmp/tried; exit 1; }']}\n",
    );
    let o = kube_ok(&d, &["play", &retry]);
    assert!(o.err().contains("Job retry: completed"), "{}", o.describe());
    let main = d.inspect("retry-pod-main");
    assert_eq!(main["RestartCount"], 1);
    assert_eq!(main["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    kube_ok(&d, &["down", &retry]);
    assert_empty(&d);

    // From standard input, created but not started; a Secret as files.
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {key: aGVsbG8=}\n---\n\
                apiVersion: v1\nkind: Pod\nmetadata: {name: idle}\nspec:\n  restartPolicy: Never\n  volumes: [{name: sec, secret: {secretName: s}}]\n\
                \x20 containers:\n    - {name: c, image: busybox, command: [cat, /s/key], volumeMounts: [{name: sec, mountPath: /s}]}\n";
    let mut c = d.pier_cmd();
    c.args(["kube", "play", "--start=false", "-"]);
    let o = cmd::run(c, Input::Bytes(yaml.as_bytes()), CMD_TIMEOUT);
    assert!(o.status.success(), "{}", o.describe());
    assert_eq!(d.inspect("idle-c")["State"]["Status"], "created");
    assert_eq!(d.inspect("idle-infra")["State"]["Running"], false);
    // Pier has no `pod start`: the infra container first, then the others.
    d.pier_ok(&["start", "idle-infra", "idle-c"]);
    assert_eq!(d.pier_ok(&["wait", "idle-c"]).trim(), "0");
    assert_eq!(d.pier_ok(&["logs", "idle-c"]), "hello");
    let mut c = d.pier_cmd();
    c.args(["kube", "down", "-"]);
    let o = cmd::run(c, Input::Bytes(yaml.as_bytes()), CMD_TIMEOUT);
    assert!(o.status.success(), "{}", o.describe());
    assert_empty(&d);

    // Two replicas share a claim; --replace keeps its data, --down removes it.
    let keep = dir.write(
        "keep.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: keep}\nspec:\n  replicas: 2\n  template:\n    spec:\n\
         \x20     volumes: [{name: d, persistentVolumeClaim: {claimName: keep-data}}]\n\
         \x20     containers: [{name: c, image: busybox, command: [sleep, '600'], volumeMounts: [{name: d, mountPath: /data}]}]\n",
    );
    kube_ok(&d, &["play", &keep]);
    d.pier_ok(&["exec", "keep-pod-1-c", "sh", "-c", "echo kept > /data/f"]);
    assert_eq!(
        d.pier_ok(&["exec", "keep-pod-2-c", "cat", "/data/f"]),
        "kept\n"
    );
    kube_ok(&d, &["play", "--replace", &keep]);
    assert_eq!(
        d.pier_ok(&["exec", "keep-pod-2-c", "cat", "/data/f"]),
        "kept\n"
    );
    let down = kube_ok(&d, &["down", &keep]).out();
    assert!(down.ends_with("Volumes removed:\nkeep-data\n"), "{down}");
    assert_empty(&d);
    d.assert_clean();
}

#[test]
fn build_publish_service_and_compose() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new("build");
    dir.write(
        "hello/Dockerfile",
        "FROM busybox\nRUN mkdir /www && echo built > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
    );
    let file = dir.write(
        "app.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
spec:
  containers:
    - name: web
      image: localhost/hello:1
      ports:
        - {containerPort: 80, name: http}
      livenessProbe:
        httpGet: {path: /index.html, port: http}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  type: NodePort
  selector: {app: hello}
  ports:
    - {port: 80, targetPort: http, nodePort: 18481}
"#,
    );
    kube_ok(&d, &["play", "--build", &file]);
    assert!(d
        .pier_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("localhost/hello:1"));
    wait_for(&d, 18481, "/index.html", "built\n");
    let healthy = wait_until(Duration::from_secs(20), || {
        d.inspect("hello-web")["State"]["Health"]["Status"] == "healthy"
    });
    assert!(healthy, "{}", d.inspect("hello-web")["State"]);
    // --replace with --publish: the port moves.
    kube_ok(&d, &["play", "--replace", "--publish", "18482:80", &file]);
    wait_for(&d, 18482, "/index.html", "built\n");
    kube_ok(&d, &["down", &file]);
    assert_empty(&d);

    // A compose project as one pod, validated.
    let compose = dir.write(
        "proj/compose.yaml",
        "services:\n  web:\n    image: busybox\n    command: [httpd, -f, -p, '80']\n    ports: ['127.0.0.1:18483:80']\n    volumes: [data:/data]\n    healthcheck:\n      test: [CMD, wget, -qO-, http://127.0.0.1/]\n      interval: 2s\n  side:\n    image: busybox\n    environment: {A: b}\n    command: [sleep, '600']\nvolumes:\n  data:\n",
    );
    let yaml = kube_ok(&d, &["generate", "-s", "--compose", &compose]).out();
    let gen_file = dir.0.join("compose-yaml.yaml");
    std::fs::write(&gen_file, &yaml).unwrap();
    validate(&gen_file);
    for want in [
        "kind: PersistentVolumeClaim",
        "claimName: proj-data",
        "hostIP: 127.0.0.1",
        "livenessProbe:",
    ] {
        assert!(yaml.contains(want), "{want:?} missing in:\n{yaml}");
    }
    let played = kube_ok(&d, &["play", gen_file.to_str().unwrap()]).out();
    assert!(
        played.starts_with("Volume:\nproj-data\n\nPod:\n"),
        "{played}"
    );
    assert_eq!(
        d.inspect("proj-side")["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| *e == "A=b")
            .count(),
        1
    );
    let down = kube_ok(&d, &["down", gen_file.to_str().unwrap()]).out();
    assert!(down.ends_with("Volumes removed:\nproj-data\n"), "{down}");
    assert_empty(&d);
    d.assert_clean();
}

#[test]
fn init_containers_probes_and_plain_containers_generated() {
    let d = TestDaemon::with_busybox();
    let dir = Dir::new("init");
    let file = dir.write(
        "init.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: prep
spec:
  volumes:
    - {name: work, emptyDir: {}}
  initContainers:
    - name: fill
      image: busybox
      command: [sh, -c, "echo prepared > /work/state"]
      volumeMounts: [{name: work, mountPath: /work}]
  containers:
    - name: main
      image: busybox
      command: [sh, -c, "cat /work/state; exec sleep 600"]
      volumeMounts: [{name: work, mountPath: /work}]
      readinessProbe:
        exec: {command: [test, -f, /work/state]}
        periodSeconds: 1
"#,
    );
    kube_ok(&d, &["play", &file]);
    assert_eq!(d.inspect("prep-fill")["State"]["ExitCode"], 0);
    let main = d.inspect("prep-main");
    assert_eq!(main["Config"]["Healthcheck"]["Test"][0], "CMD");
    assert_eq!(main["Config"]["Healthcheck"]["Interval"], 1_000_000_000i64);
    let healthy = wait_until(Duration::from_secs(20), || {
        d.inspect("prep-main")["State"]["Health"]["Status"] == "healthy"
    });
    assert!(healthy, "{}", d.inspect("prep-main")["State"]);
    assert_eq!(d.pier_ok(&["logs", "prep-main"]), "prepared\n");
    let yaml = kube_ok(&d, &["generate", "prep-main"]).out();
    let gen_file = dir.0.join("prep.yaml");
    std::fs::write(&gen_file, &yaml).unwrap();
    validate(&gen_file);
    let init = yaml.find("initContainers:").expect(&yaml);
    assert!(yaml[init..].contains("- name: fill"), "{yaml}");
    assert!(
        !yaml.contains("readinessProbe") && yaml.contains("livenessProbe:"),
        "{yaml}"
    );
    assert!(!yaml.contains("workingDir"), "{yaml}");
    kube_ok(&d, &["down", &file]);
    assert_empty(&d);

    // hostNetwork: the pod listens on the daemon's own network.
    let hostnet = dir.write(
        "hostnet.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hn}\nspec:\n  hostNetwork: true\n  containers:\n\
         \x20   - {name: web, image: busybox, command: [httpd, -f, -p, '18485', -h, /etc], ports: [{containerPort: 18485, hostPort: 18485}]}\n",
    );
    kube_ok(&d, &["play", &hostnet]);
    assert_eq!(d.inspect("hn-infra")["HostConfig"]["NetworkMode"], "host");
    let up = wait_until(Duration::from_secs(20), || {
        get(&d, 18485, "/passwd").is_some()
    });
    assert!(
        up,
        "nothing answers on the daemon's port 18485\n{}",
        d.log_tail(20)
    );
    kube_ok(&d, &["down", &hostnet]);
    assert_empty(&d);

    // Containers made by `pier run` become one pod; a named volume a claim.
    d.pier_ok(&[
        "run",
        "-d",
        "--name",
        "plain_web",
        "-p",
        "127.0.0.1:18484:80",
        "-v",
        "my_data:/data",
        "--memory",
        "32m",
        "--user",
        "1000:1000",
        "-e",
        "MODE=plain",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/data",
    ]);
    let yaml = kube_ok(&d, &["generate", "-s", "plain_web"]).out();
    let gen_file = dir.0.join("plain.yaml");
    std::fs::write(&gen_file, &yaml).unwrap();
    validate(&gen_file);
    for want in [
        "name: plain-web-pod",
        "claimName: my-data",
        "kind: PersistentVolumeClaim",
        "memory: \"33554432\"",
        "runAsUser: 1000",
        "value: plain",
        "hostIP: 127.0.0.1",
    ] {
        assert!(yaml.contains(want), "{want:?} missing in:\n{yaml}");
    }
    d.pier_ok(&["rm", "-f", "plain_web"]);
    d.pier_ok(&["volume", "rm", "my_data"]);
    kube_ok(&d, &["play", gen_file.to_str().unwrap()]);
    let web = d.inspect("plain-web-pod-plain-web");
    assert_eq!(web["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(web["Config"]["User"], "1000:1000");
    kube_ok(&d, &["down", gen_file.to_str().unwrap()]);
    assert_empty(&d);
    d.assert_clean();
}
