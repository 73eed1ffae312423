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

/// Which events a client wants (`filters` of `/events`).
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub kinds: Vec<String>,
    pub events: Vec<String>,
    pub containers: Vec<String>,
    pub images: Vec<String>,
    pub labels: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &EventMessage) -> bool {
        let kind = e.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = e.action.clone().unwrap_or_default();
        let actor = e.actor.clone().unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        let attrs = actor.attributes.unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_default();
        let ok =
            |list: &Vec<String>, f: &dyn Fn(&String) -> bool| list.is_empty() || list.iter().any(f);
        ok(&self.kinds, &|k| *k == kind)
            && ok(&self.events, &|a| {
                action == *a || action.starts_with(&format!("{a}:"))
            })
            && ok(&self.containers, &|c| {
                kind == "container" && (id.starts_with(c.as_str()) || name == *c)
            })
            && ok(&self.images, &|i| {
                (kind == "image" && (id == *i || id.starts_with(i.as_str())))
                    || attrs.get("image").is_some_and(|im| im == i)
            })
            && crate::util::labels_match(&self.labels, &attrs)
    }
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
