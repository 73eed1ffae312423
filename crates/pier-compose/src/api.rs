//! The Engine API calls compose needs, over `pier-client` like any client.

use crate::error::Result;
use crate::labels;
use pier_client::{query, read_body, Client, ClientError, JsonLines};
use serde_json::{json, Value};

/// A container as `/containers/json` lists it (the fields compose reads).
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
    pub config_hash: String,
    pub image_label: String,
    pub state: String,
    pub status: String,
    pub image: String,
    /// The image's ID (`ImageID`).
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Value>,
}

impl Summary {
    fn from_json(v: &Value) -> Summary {
        let label = |k: &str| {
            v["Labels"][k]
                .as_str()
                .map(str::to_string)
                .unwrap_or_default()
        };
        Summary {
            id: v["Id"].as_str().unwrap_or_default().to_string(),
            name: v["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service: label(labels::SERVICE),
            number: label(labels::NUMBER).parse().unwrap_or(0),
            oneoff: label(labels::ONEOFF) == "True",
            config_hash: label(labels::CONFIG_HASH),
            image_label: label(labels::IMAGE),
            state: v["State"].as_str().unwrap_or_default().to_string(),
            status: v["Status"].as_str().unwrap_or_default().to_string(),
            image: v["Image"].as_str().unwrap_or_default().to_string(),
            image_id: v["ImageID"].as_str().unwrap_or_default().to_string(),
            command: v["Command"].as_str().unwrap_or_default().to_string(),
            created: v["Created"].as_i64().unwrap_or(0),
            ports: v["Ports"].as_array().cloned().unwrap_or_default(),
        }
    }

    pub fn running(&self) -> bool {
        self.state == "running" || self.state == "restarting"
    }
}

pub struct Api {
    pub client: Client,
}

fn enc(s: &str) -> String {
    query(&[("x", s.to_string())])
        .trim_start_matches("?x=")
        .to_string()
}

impl Api {
    pub fn new(client: Client) -> Api {
        Api { client }
    }

    /// The project's containers (`oneoff` ones only when asked), by name.
    pub async fn containers(
        &self,
        project: &str,
        all: bool,
        oneoff: Option<bool>,
    ) -> Result<Vec<Summary>> {
        let mut label = vec![format!("{}={project}", labels::PROJECT)];
        match oneoff {
            Some(true) => label.push(format!("{}=True", labels::ONEOFF)),
            Some(false) => label.push(format!("{}=False", labels::ONEOFF)),
            None => {}
        }
        let filters = json!({ "label": label }).to_string();
        let mut q = vec![("filters", filters)];
        if all {
            q.push(("all", "1".into()));
        }
        let v: Vec<Value> = self
            .client
            .get_json(&format!("/containers/json{}", query(&q)))
            .await?;
        let mut out: Vec<Summary> = v.iter().map(Summary::from_json).collect();
        out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        Ok(out)
    }

    /// Every compose project's containers (for `ls`).
    pub async fn all_compose_containers(&self) -> Result<Vec<Value>> {
        let filters = json!({ "label": [labels::PROJECT] }).to_string();
        Ok(self
            .client
            .get_json(&format!(
                "/containers/json{}",
                query(&[("all", "1".into()), ("filters", filters)])
            ))
            .await?)
    }

    pub async fn inspect(&self, id: &str) -> Result<Value> {
        Ok(self
            .client
            .get_json(&format!("/containers/{}/json", enc(id)))
            .await?)
    }

    pub async fn create(&self, name: &str, body: &Value) -> Result<String> {
        let v: Value = self
            .client
            .post_json(
                &format!("/containers/create{}", query(&[("name", name.to_string())])),
                Some(body),
            )
            .await?;
        Ok(v["Id"].as_str().unwrap_or_default().to_string())
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/start", enc(id)))
            .await?)
    }

    pub async fn stop(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q = match timeout {
            Some(t) => query(&[("t", t.to_string())]),
            None => String::new(),
        };
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/stop{q}", enc(id)))
            .await?)
    }

    pub async fn restart(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q = match timeout {
            Some(t) => query(&[("t", t.to_string())]),
            None => String::new(),
        };
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/restart{q}", enc(id)))
            .await?)
    }

    pub async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let q = query(&[("signal", signal.to_string())]);
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/kill{q}", enc(id)))
            .await?)
    }

    pub async fn pause(&self, id: &str, pause: bool) -> Result<()> {
        let verb = if pause { "pause" } else { "unpause" };
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/{verb}", enc(id)))
            .await?)
    }

    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = query(&[("force", force.to_string()), ("v", volumes.to_string())]);
        let resp = self
            .client
            .delete(&format!("/containers/{}{q}", enc(id)))
            .await?;
        read_body(resp).await?;
        Ok(())
    }

    /// Extracts the tar `data` at `path` in the container.
    /// With `keep_owner` the archive's uid/gid are kept (`copyUIDGID`).
    pub async fn put_archive(
        &self,
        id: &str,
        path: &str,
        keep_owner: bool,
        data: Vec<u8>,
    ) -> Result<()> {
        let mut q = vec![("path", path.to_string())];
        if keep_owner {
            q.push(("copyUIDGID", "1".to_string()));
        }
        let q = query(&q);
        let resp = self
            .client
            .request(
                http::Method::PUT,
                &format!("/containers/{}/archive{q}", enc(id)),
                pier_client::body_bytes(data),
            )
            .await?;
        read_body(resp).await?;
        Ok(())
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let q = query(&[("name", name.to_string())]);
        Ok(self
            .client
            .post_unit(&format!("/containers/{}/rename{q}", enc(id)))
            .await?)
    }

    /// Blocks until the container is not running; its exit code.
    pub async fn wait(&self, id: &str) -> Result<i64> {
        let v: Value = self
            .client
            .post_json::<Value, ()>(&format!("/containers/{}/wait", enc(id)), None)
            .await?;
        Ok(v["StatusCode"].as_i64().unwrap_or(-1))
    }

    pub async fn network_inspect(&self, name: &str) -> Result<Option<Value>> {
        match self
            .client
            .get_json(&format!("/networks/{}", enc(name)))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn network_create(&self, body: &Value) -> Result<()> {
        let _: Value = self
            .client
            .post_json("/networks/create", Some(body))
            .await?;
        Ok(())
    }

    pub async fn network_connect(
        &self,
        net: &str,
        container: &str,
        endpoint: &Value,
    ) -> Result<()> {
        let body = json!({ "Container": container, "EndpointConfig": endpoint });
        let resp = self
            .client
            .post(&format!("/networks/{}/connect", enc(net)), Some(&body))
            .await?;
        read_body(resp).await?;
        Ok(())
    }

    pub async fn network_remove(&self, name: &str) -> Result<bool> {
        match self
            .client
            .delete(&format!("/networks/{}", enc(name)))
            .await
        {
            Ok(r) => {
                read_body(r).await?;
                Ok(true)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn networks_by_project(&self, project: &str) -> Result<Vec<Value>> {
        let filters = json!({ "label": [format!("{}={project}", labels::PROJECT)] }).to_string();
        Ok(self
            .client
            .get_json(&format!("/networks{}", query(&[("filters", filters)])))
            .await?)
    }

    pub async fn volume_inspect(&self, name: &str) -> Result<Option<Value>> {
        match self
            .client
            .get_json(&format!("/volumes/{}", enc(name)))
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Names of the volumes labelled as `project`'s.
    pub async fn volumes_by_project(&self, project: &str) -> Result<Vec<String>> {
        let filters = json!({ "label": [format!("{}={project}", labels::PROJECT)] }).to_string();
        let v: Value = self
            .client
            .get_json(&format!("/volumes{}", query(&[("filters", filters)])))
            .await?;
        Ok(v["Volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["Name"].as_str().map(str::to_string))
            .collect())
    }

    pub async fn volume_create(&self, body: &Value) -> Result<()> {
        let _: Value = self.client.post_json("/volumes/create", Some(body)).await?;
        Ok(())
    }

    pub async fn volume_remove(&self, name: &str) -> Result<bool> {
        match self.client.delete(&format!("/volumes/{}", enc(name))).await {
            Ok(r) => {
                read_body(r).await?;
                Ok(true)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The image's ID, or `None` when it is not here.
    pub async fn image_id(&self, name: &str) -> Result<Option<String>> {
        match self
            .client
            .get_json::<Value>(&format!("/images/{}/json", enc(name)))
            .await
        {
            Ok(v) => Ok(v["Id"].as_str().map(str::to_string)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn image_remove(&self, name: &str) -> Result<bool> {
        match self.client.delete(&format!("/images/{}", enc(name))).await {
            Ok(r) => {
                read_body(r).await?;
                Ok(true)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pulls `image`; the daemon's error message when the stream reports one.
    pub async fn pull(&self, image: &str) -> Result<()> {
        let (name, tag) = split_tag(image);
        let mut q = vec![("fromImage", name.to_string())];
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        let resp = self
            .client
            .post::<()>(&format!("/images/create{}", query(&q)), None)
            .await?;
        let mut lines = JsonLines::new(resp);
        while let Some(m) = lines.next::<Value>().await {
            let m = m?;
            if let Some(e) = m["error"].as_str() {
                return Err(ClientError::Daemon {
                    status: 500,
                    message: e.to_string(),
                }
                .into());
            }
        }
        Ok(())
    }
}

/// `repo[:tag]` (a `:` in a registry's port is not a tag; a digest is kept whole).
pub fn split_tag(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (image, None),
    }
}
