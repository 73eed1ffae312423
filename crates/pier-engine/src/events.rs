//! The `/events` stream: a broadcast channel plus a short history so that
//! `--since` can replay what happened before the client connected.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use pier_api::models::{EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum};
use tokio::sync::broadcast;

const HISTORY: usize = 1000;

pub struct Events {
    tx: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

/// Which events a client wants (`filters` of `/events`), matched as moby's
/// daemon/events filter matches: keys are ANDed, the values of one key ORed;
/// a key the filter does not hold lets everything through.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    args: HashMap<String, Vec<String>>,
}

/// The keys dockerd's event filter reads (the swarm ones match nothing here).
const KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Object kinds matched on the actor's ID prefix or its `name` attribute.
const NAMED: &[&str] = &[
    "config",
    "container",
    "daemon",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "volume",
];

impl EventFilter {
    /// A filter from the request's `filters`; an unknown key is refused
    /// rather than ignored.
    pub fn new(args: HashMap<String, Vec<String>>) -> crate::Result<Self> {
        crate::util::check_filter_keys(&args, KEYS)?;
        Ok(EventFilter { args })
    }

    fn values(&self, key: &str) -> Option<&Vec<String>> {
        self.args.get(key).filter(|v| !v.is_empty())
    }

    fn exact(&self, key: &str, v: &str) -> bool {
        self.values(key).is_none_or(|l| l.iter().any(|x| x == v))
    }

    fn fuzzy(&self, key: &str, v: &str) -> bool {
        self.values(key)
            .is_none_or(|l| l.iter().any(|x| v.starts_with(x.as_str())))
    }

    pub fn matches(&self, e: &EventMessage) -> bool {
        let kind = e.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = e.action.clone().unwrap_or_default();
        let actor = e.actor.clone().unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        let attrs = actor.attributes.unwrap_or_default();
        let attr = |k: &str| attrs.get(k).map(String::as_str).unwrap_or_default();
        let scope = e.scope.map(|s| s.to_string()).unwrap_or_default();
        // `health_status`, `exec_create`, `exec_start` also match their
        // `health_status: healthy`, `exec_start: sh` forms (moby #25798).
        let fuzzy_event = self.values("event").is_some_and(|l| {
            l.iter()
                .any(|a| matches!(a.as_str(), "health_status" | "exec_create" | "exec_start"))
        });
        let event_ok = if fuzzy_event {
            self.fuzzy("event", &action)
        } else {
            self.exact("event", &action)
        };
        // An image filter matches image events by ID or name and container
        // events by their image, with or without the tag.
        let image_name = attr(if kind == "image" { "name" } else { "image" });
        let image_ok = [id.as_str(), image_name]
            .iter()
            .any(|v| self.exact("image", v) || self.exact("image", &strip_tag(v)));
        event_ok
            && self.exact("type", &kind)
            && self.exact("scope", &scope)
            && NAMED
                .iter()
                .all(|k| self.fuzzy(k, &id) || self.fuzzy(k, attr("name")))
            && image_ok
            && crate::util::labels_match(
                self.values("label").map(Vec::as_slice).unwrap_or_default(),
                &attrs,
            )
    }
}

/// `name:tag`, `name@digest` and `docker.io/library/name` as `name`, as
/// moby compares image names in event filters (reference.FamiliarName).
fn strip_tag(image: &str) -> String {
    if image.starts_with("sha256:") {
        return image.to_string();
    }
    let no_digest = image.split('@').next().unwrap_or(image);
    let slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let name = match no_digest[slash..].rfind(':') {
        Some(i) => &no_digest[..slash + i],
        None => no_digest,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Events {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    pub fn emit(
        &self,
        kind: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attrs: HashMap<String, String>,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let e = EventMessage {
            typ: Some(kind),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attrs),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.as_secs() as i64),
            time_nano: Some(now.as_nanos() as i64),
        };
        {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}

impl crate::Engine {
    pub(crate) fn container_event(
        &self,
        action: &str,
        rec: &crate::ContainerRecord,
        extra: &[(&str, String)],
    ) {
        let mut attrs: HashMap<String, String> = rec.config.labels.clone().unwrap_or_default();
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events
            .emit(EventMessageTypeEnum::CONTAINER, action, &rec.id, attrs);
    }

    /// Docker's `volume mount` (at start) and `volume unmount` (at exit)
    /// events, one per named volume of the container.
    pub(crate) fn volume_use_events(&self, action: &str, rec: &crate::ContainerRecord) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            let mut attrs = HashMap::from([
                ("container".to_string(), rec.id.clone()),
                ("driver".to_string(), "local".to_string()),
            ]);
            if action == "mount" {
                attrs.insert("destination".into(), m.destination.clone());
                attrs.insert("read/write".into(), m.rw.to_string());
                attrs.insert("propagation".into(), m.propagation.clone());
            }
            self.events
                .emit(EventMessageTypeEnum::VOLUME, action, &m.name, attrs);
        }
    }

    pub(crate) fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = HashMap::new();
        attrs.insert("name".into(), name.to_string());
        self.events
            .emit(EventMessageTypeEnum::IMAGE, action, id, attrs);
    }

    /// Past events (for `since`) and a receiver for new ones.
    pub fn subscribe_events(&self) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        kind: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attrs: &[(&str, &str)],
    ) -> EventMessage {
        EventMessage {
            typ: Some(kind),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: None,
            time_nano: None,
        }
    }

    fn f(pairs: &[(&str, &[&str])]) -> EventFilter {
        EventFilter::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn filters_match_as_moby_does() {
        use EventMessageTypeEnum as T;
        let ctr = ev(
            T::CONTAINER,
            "start",
            "abc123",
            &[
                ("name", "web"),
                ("image", "docker.io/library/busybox:latest"),
                ("tier", "front"),
            ],
        );
        let net = ev(
            T::NETWORK,
            "connect",
            "net999",
            &[("name", "backend"), ("container", "abc123")],
        );
        let vol = ev(T::VOLUME, "mount", "data", &[("container", "abc123")]);
        let img = ev(
            T::IMAGE,
            "tag",
            "sha256:feed",
            &[("name", "busybox:latest")],
        );
        let exec = ev(
            T::CONTAINER,
            "exec_start: sh -c true",
            "abc123",
            &[("name", "web")],
        );
        let all = [&ctr, &net, &vol, &img, &exec];
        let pass = |f: &EventFilter| all.iter().filter(|e| f.matches(e)).count();
        assert_eq!(pass(&f(&[])), 5);
        assert!(f(&[("container", &["web"])]).matches(&ctr));
        assert!(f(&[("container", &["abc"])]).matches(&ctr));
        assert!(!f(&[("container", &["web"])]).matches(&net));
        assert!(f(&[("network", &["backend"])]).matches(&net));
        assert!(f(&[("network", &["net9"])]).matches(&net));
        assert_eq!(pass(&f(&[("network", &["backend"])])), 1);
        assert_eq!(pass(&f(&[("volume", &["data"])])), 1);
        assert_eq!(pass(&f(&[("daemon", &["nope"])])), 0);
        assert_eq!(pass(&f(&[("type", &["network", "volume"])])), 2);
        assert_eq!(pass(&f(&[("scope", &["local"])])), 5);
        assert_eq!(pass(&f(&[("scope", &["swarm"])])), 0);
        assert_eq!(pass(&f(&[("event", &["start"])])), 1);
        assert_eq!(pass(&f(&[("event", &["exec_start"])])), 1);
        assert_eq!(pass(&f(&[("event", &["exec_start", "start"])])), 2);
        assert_eq!(pass(&f(&[("label", &["tier=front"])])), 1);
        assert_eq!(pass(&f(&[("label", &["tier=back"])])), 0);
        // The image filter takes the image's events and its containers'.
        assert_eq!(pass(&f(&[("image", &["busybox"])])), 2);
        assert_eq!(pass(&f(&[("image", &["sha256:feed"])])), 1);
        assert!(EventFilter::new(HashMap::from([("bogus".to_string(), vec![])])).is_err());
    }

    #[test]
    fn image_names_lose_tag_digest_and_default_registry() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("docker.io/library/busybox:1"), "busybox");
        assert_eq!(strip_tag("reg:5000/a/b:t"), "reg:5000/a/b");
        assert_eq!(strip_tag("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(strip_tag("a/b@sha256:00"), "a/b");
        assert_eq!(strip_tag("sha256:00"), "sha256:00");
    }
}
