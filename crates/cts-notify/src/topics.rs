//! SMN-style topics and their subscriptions, per project: [`Topics`], persisted as one JSON file,
//! `<data_dir>/notify/topics.json` (mode 0600), replaced atomically before a change is visible.
//!
//! The subscriptions' signing secrets are sealed at rest the way cts-iam seals secret keys
//! ([`MasterKey::seal`], ChaCha20-Poly1305 under the data directory's master key, bound to the
//! subscription URN); in memory they are plain, for signing. A file of an earlier version holding
//! plain secrets is read and rewritten sealed at open.
//!
//! A topic's URN is `urn:smn:{region}:{project_id}:{name}`, a subscription's
//! `{topic_urn}:{32 hex digits}`, as in SMN. Subscriptions are confirmed at once (SMN asks the
//! endpoint to confirm first; cts's endpoints are configured by the project's admin).

use crate::error::NotifyError;
use cts_iam::MasterKey;
use parking_lot::RwLock;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most topics a project may have.
pub const MAX_TOPICS: usize = 100;
/// The most subscriptions a topic may have.
pub const MAX_SUBSCRIPTIONS: usize = 1000;

/// How a subscription is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
    Email,
}

impl Protocol {
    pub fn parse(text: &str) -> Result<Protocol, NotifyError> {
        match text {
            "http" => Ok(Protocol::Http),
            "https" => Ok(Protocol::Https),
            "email" => Ok(Protocol::Email),
            _ => Err(NotifyError::invalid("protocol", format!("{text:?} must be http, https or email"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub topic_urn: String,
    pub name: String,
    pub display_name: String,
    pub project_id: String,
    /// UTC milliseconds.
    pub create_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscription_urn: String,
    pub topic_urn: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub remark: String,
    /// The HMAC-SHA256 key of webhook signatures (hex); answered once, at creation. Never
    /// serialized: the file holds it sealed.
    #[serde(skip)]
    pub secret: String,
    pub create_time: i64,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Topics by URN (a URN names its project).
    topics: BTreeMap<String, StoredTopic>,
}

#[derive(Debug, Clone)]
struct StoredTopic {
    topic: Topic,
    subscriptions: Vec<Subscription>,
}

/// The file's form of [`State`]: the secrets sealed.
#[derive(Serialize, Deserialize)]
struct StateFile {
    topics: BTreeMap<String, TopicFile>,
}

#[derive(Serialize, Deserialize)]
struct TopicFile {
    topic: Topic,
    subscriptions: Vec<SubscriptionFile>,
}

#[derive(Serialize, Deserialize)]
struct SubscriptionFile {
    #[serde(flatten)]
    subscription: Subscription,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
    /// The plain secret as files of an earlier version kept it; read, never written.
    #[serde(default, rename = "secret", skip_serializing)]
    plain_secret: Option<String>,
}

/// What a subscription's sealed secret is bound to.
fn seal_context(subscription_urn: &str) -> String {
    format!("smn-subscription:{subscription_urn}")
}

/// Every project's topics, read from memory, each change written to disk before it is visible.
pub struct Topics {
    path: PathBuf,
    region: String,
    master_key: MasterKey,
    state: RwLock<State>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").field("path", &self.path).field("region", &self.region).finish_non_exhaustive()
    }
}

impl Topics {
    /// Opens (or starts) the topics of `data_dir`, whose secrets `master_key` seals; new topics get
    /// URNs in `region`.
    pub fn open(data_dir: &Path, region: &str, master_key: MasterKey) -> Result<Topics, NotifyError> {
        let path = data_dir.join("notify").join("topics.json");
        let (state, has_plain_secrets) = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| NotifyError::Corrupt { path: path.clone(), reason: e.to_string() })?;
                unseal(file, &master_key, &path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::default(), false),
            Err(source) => return Err(NotifyError::Read { path, source }),
        };
        let topics = Topics { path, region: region.to_owned(), master_key, state: RwLock::new(state) };
        if has_plain_secrets {
            tracing::info!(path = %topics.path.display(), "sealing the plain subscription secrets of an earlier version");
            topics.change(|_| Ok(()))?;
        }
        Ok(topics)
    }

    /// CreateTopic: a topic named `name` (unique in the project).
    pub fn create_topic(&self, project_id: &str, name: &str, display_name: &str) -> Result<Topic, NotifyError> {
        check_topic_name(name)?;
        if display_name.chars().count() > 192 {
            return Err(NotifyError::invalid("display_name", "is at most 192 characters"));
        }
        let topic = Topic {
            topic_urn: format!("urn:smn:{}:{project_id}:{name}", self.region),
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            project_id: project_id.to_owned(),
            create_time: cts_model::now_ms(),
        };
        self.change(|state| {
            if state.topics.values().any(|stored| stored.topic.project_id == project_id && stored.topic.name == name) {
                return Err(NotifyError::TopicExists(name.to_owned()));
            }
            if state.topics.values().filter(|stored| stored.topic.project_id == project_id).count() >= MAX_TOPICS {
                return Err(NotifyError::QuotaExceeded { what: "topics per project", limit: MAX_TOPICS });
            }
            state.topics.insert(topic.topic_urn.clone(), StoredTopic { topic: topic.clone(), subscriptions: vec![] });
            Ok(topic)
        })
    }

    /// ListTopics: the project's topics, oldest first.
    pub fn list_topics(&self, project_id: &str) -> Vec<Topic> {
        let state = self.state.read();
        let mut topics: Vec<Topic> = state
            .topics
            .values()
            .filter(|stored| stored.topic.project_id == project_id)
            .map(|stored| stored.topic.clone())
            .collect();
        topics.sort_by_key(|topic| topic.create_time);
        topics
    }

    /// DeleteTopic, with its subscriptions.
    pub fn delete_topic(&self, project_id: &str, topic_urn: &str) -> Result<(), NotifyError> {
        self.change(|state| {
            let urn = project_topic(state, project_id, topic_urn)?.topic.topic_urn.clone();
            state.topics.remove(&urn);
            Ok(())
        })
    }

    /// AddSubscription: a confirmed subscription with a new signing secret.
    pub fn add_subscription(
        &self,
        project_id: &str,
        topic_urn: &str,
        protocol: Protocol,
        endpoint: &str,
        remark: &str,
    ) -> Result<Subscription, NotifyError> {
        check_endpoint(protocol, endpoint)?;
        if remark.chars().count() > 128 {
            return Err(NotifyError::invalid("remark", "is at most 128 characters"));
        }
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let subscription = Subscription {
            subscription_urn: format!("{topic_urn}:{}", uuid::Uuid::new_v4().simple()),
            topic_urn: topic_urn.to_owned(),
            protocol,
            endpoint: endpoint.to_owned(),
            remark: remark.to_owned(),
            secret: hex::encode(secret),
            create_time: cts_model::now_ms(),
        };
        self.change(|state| {
            let urn = project_topic(state, project_id, topic_urn)?.topic.topic_urn.clone();
            let stored = state.topics.get_mut(&urn).expect("found above");
            if stored.subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return Err(NotifyError::QuotaExceeded { what: "subscriptions per topic", limit: MAX_SUBSCRIPTIONS });
            }
            stored.subscriptions.push(subscription.clone());
            Ok(subscription)
        })
    }

    /// ListSubscriptionsByTopic, oldest first.
    pub fn list_subscriptions(&self, project_id: &str, topic_urn: &str) -> Result<Vec<Subscription>, NotifyError> {
        let state = self.state.read();
        Ok(project_topic(&state, project_id, topic_urn)?.subscriptions.clone())
    }

    /// DeleteSubscription.
    pub fn delete_subscription(&self, project_id: &str, subscription_urn: &str) -> Result<(), NotifyError> {
        self.change(|state| {
            let stored = state
                .topics
                .values_mut()
                .filter(|stored| stored.topic.project_id == project_id)
                .find(|stored| stored.subscriptions.iter().any(|s| s.subscription_urn == subscription_urn))
                .ok_or_else(|| NotifyError::SubscriptionNotFound(subscription_urn.to_owned()))?;
            stored.subscriptions.retain(|s| s.subscription_urn != subscription_urn);
            Ok(())
        })
    }

    /// The subscriptions of a topic (none when it does not exist).
    pub fn subscriptions_of(&self, topic_urn: &str) -> Vec<Subscription> {
        self.state.read().topics.get(topic_urn).map(|stored| stored.subscriptions.clone()).unwrap_or_default()
    }

    /// One subscription by URN.
    pub fn subscription(&self, subscription_urn: &str) -> Option<Subscription> {
        let state = self.state.read();
        let topics = state.topics.values();
        topics.flat_map(|stored| &stored.subscriptions).find(|s| s.subscription_urn == subscription_urn).cloned()
    }

    fn change<T>(&self, f: impl FnOnce(&mut State) -> Result<T, NotifyError>) -> Result<T, NotifyError> {
        let mut state = self.state.write();
        let mut next = state.clone();
        let outcome = f(&mut next)?;
        let bytes = serde_json::to_vec_pretty(&self.seal(&next)).expect("the topics serialize");
        cts_durable::write_atomically(&self.path, &bytes)
            .map_err(|source| NotifyError::Write { path: self.path.clone(), source })?;
        *state = next;
        Ok(outcome)
    }
}

impl Topics {
    fn seal(&self, state: &State) -> StateFile {
        let topics = state.topics.iter().map(|(urn, stored)| {
            let subscriptions = stored.subscriptions.iter().map(|subscription| SubscriptionFile {
                sealed_secret: Some(
                    self.master_key.seal(&subscription.secret, &seal_context(&subscription.subscription_urn)),
                ),
                subscription: subscription.clone(),
                plain_secret: None,
            });
            (urn.clone(), TopicFile { topic: stored.topic.clone(), subscriptions: subscriptions.collect() })
        });
        StateFile { topics: topics.collect() }
    }
}

/// The state in `file`, its secrets unsealed; and whether any was plain.
fn unseal(file: StateFile, master_key: &MasterKey, path: &Path) -> Result<(State, bool), NotifyError> {
    let mut has_plain_secrets = false;
    let mut topics = BTreeMap::new();
    for (urn, stored) in file.topics {
        let mut subscriptions = Vec::with_capacity(stored.subscriptions.len());
        for SubscriptionFile { mut subscription, sealed_secret, plain_secret } in stored.subscriptions {
            subscription.secret = match (sealed_secret, plain_secret) {
                (Some(sealed), _) => {
                    master_key.open(&sealed, &seal_context(&subscription.subscription_urn)).map_err(|_| {
                        NotifyError::Unseal { path: path.to_owned(), what: subscription.subscription_urn.clone() }
                    })?
                }
                (None, Some(plain)) => {
                    has_plain_secrets = true;
                    plain
                }
                (None, None) => {
                    let reason = format!("subscription {} has no secret", subscription.subscription_urn);
                    return Err(NotifyError::Corrupt { path: path.to_owned(), reason });
                }
            };
            subscriptions.push(subscription);
        }
        topics.insert(urn, StoredTopic { topic: stored.topic, subscriptions });
    }
    Ok((State { topics }, has_plain_secrets))
}

/// The topic `topic_urn` of `project_id`; another project's topic is reported as missing.
fn project_topic<'a>(state: &'a State, project_id: &str, topic_urn: &str) -> Result<&'a StoredTopic, NotifyError> {
    state
        .topics
        .get(topic_urn)
        .filter(|stored| stored.topic.project_id == project_id)
        .ok_or_else(|| NotifyError::TopicNotFound(topic_urn.to_owned()))
}

/// Topic names: 1-255 of A-Z, a-z, 0-9, '-', '_', starting with a letter or digit.
fn check_topic_name(name: &str) -> Result<(), NotifyError> {
    let valid = (1..=255).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(NotifyError::invalid(
            "name",
            format!("{name:?} must be 1-255 of A-Z, a-z, 0-9, '-', '_', starting with a letter or digit"),
        ))
    }
}

fn check_endpoint(protocol: Protocol, endpoint: &str) -> Result<(), NotifyError> {
    let invalid = |reason: &str| Err(NotifyError::invalid("endpoint", format!("{endpoint:?} {reason}")));
    match protocol {
        Protocol::Http | Protocol::Https => {
            let scheme = if protocol == Protocol::Http { "http://" } else { "https://" };
            match reqwest::Url::parse(endpoint) {
                Ok(url) if endpoint.starts_with(scheme) && url.host().is_some() => Ok(()),
                _ => invalid(&format!("must be a URL starting with {scheme}")),
            }
        }
        Protocol::Email => {
            let valid = endpoint.len() <= 254
                && endpoint.parse::<lettre::Address>().is_ok()
                && !endpoint.contains(char::is_whitespace);
            if valid {
                Ok(())
            } else {
                invalid("is not an email address")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: &str = "ap-southeast-3";

    fn open(dir: &Path, key: &MasterKey) -> Topics {
        Topics::open(dir, REGION, key.clone()).unwrap()
    }

    #[test]
    fn urns_follow_smn_and_names_are_unique_per_project() {
        let dir = tempfile::tempdir().unwrap();
        let topics = open(dir.path(), &MasterKey::generate());
        let topic = topics.create_topic("p1", "alerts", "Alerts").unwrap();
        assert_eq!(topic.topic_urn, "urn:smn:ap-southeast-3:p1:alerts");
        let subscription =
            topics.add_subscription("p1", &topic.topic_urn, Protocol::Http, "http://127.0.0.1/h", "").unwrap();
        let suffix = subscription.subscription_urn.strip_prefix("urn:smn:ap-southeast-3:p1:alerts:").unwrap();
        assert!(suffix.len() == 32 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{suffix}");
        assert!(matches!(topics.create_topic("p1", "alerts", ""), Err(NotifyError::TopicExists(_))));
        assert_eq!(topics.create_topic("p2", "alerts", "").unwrap().topic_urn, "urn:smn:ap-southeast-3:p2:alerts");
        for bad in ["", "-lead", "has space", &"x".repeat(256)] {
            assert!(matches!(topics.create_topic("p1", bad, ""), Err(NotifyError::InvalidField { .. })), "{bad:?}");
        }
        assert_eq!(topics.list_topics("p1").len(), 1);
    }

    #[test]
    fn endpoints_must_fit_the_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let topics = open(dir.path(), &MasterKey::generate());
        let urn = topics.create_topic("p1", "t", "").unwrap().topic_urn;
        let cases = [
            (Protocol::Http, "http://example.com/hook", true),
            (Protocol::Http, "https://example.com/hook", false),
            (Protocol::Https, "https://example.com/hook", true),
            (Protocol::Http, "not a url", false),
            (Protocol::Email, "ops@example.com", true),
            (Protocol::Email, "ops at example.com", false),
        ];
        for (protocol, endpoint, valid) in cases {
            assert_eq!(topics.add_subscription("p1", &urn, protocol, endpoint, "").is_ok(), valid, "{endpoint}");
        }
        let other_project = topics.add_subscription("p2", &urn, Protocol::Http, "http://example.com/", "");
        assert!(matches!(other_project, Err(NotifyError::TopicNotFound(_))), "another project's topic is missing");
    }

    #[test]
    fn deleting_a_topic_deletes_its_subscriptions_durably() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let topics = open(dir.path(), &key);
        let doomed = topics.create_topic("p1", "doomed", "").unwrap().topic_urn;
        let kept = topics.create_topic("p1", "kept", "").unwrap().topic_urn;
        let gone = topics.add_subscription("p1", &doomed, Protocol::Http, "http://a.example/", "").unwrap();
        let stays = topics.add_subscription("p1", &kept, Protocol::Http, "http://b.example/", "").unwrap();
        assert!(matches!(topics.delete_topic("p2", &doomed), Err(NotifyError::TopicNotFound(_))));
        topics.delete_topic("p1", &doomed).unwrap();
        for topics in [&topics, &open(dir.path(), &key)] {
            assert!(topics.subscription(&gone.subscription_urn).is_none());
            assert!(topics.subscriptions_of(&doomed).is_empty());
            assert!(matches!(topics.list_subscriptions("p1", &doomed), Err(NotifyError::TopicNotFound(_))));
            let result = topics.delete_subscription("p1", &gone.subscription_urn);
            assert!(matches!(result, Err(NotifyError::SubscriptionNotFound(_))));
            assert_eq!(topics.subscription(&stays.subscription_urn).unwrap().secret, stays.secret);
        }
    }

    /// Regression: subscription secrets were kept in plain text in `topics.json`.
    #[test]
    fn secrets_are_sealed_in_the_file_and_open_only_with_the_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let topics = open(dir.path(), &key);
        let urn = topics.create_topic("p1", "t", "").unwrap().topic_urn;
        let subscription = topics.add_subscription("p1", &urn, Protocol::Http, "http://a.example/", "").unwrap();
        assert_eq!(subscription.secret.len(), 64);
        let bytes = std::fs::read(dir.path().join("notify").join("topics.json")).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains(&subscription.secret), "the secret is not in the file");
        assert!(text.contains("sealed_secret"));
        let reopened = open(dir.path(), &key);
        assert_eq!(reopened.subscription(&subscription.subscription_urn).unwrap().secret, subscription.secret);
        let wrong_key = Topics::open(dir.path(), REGION, MasterKey::generate());
        assert!(matches!(wrong_key, Err(NotifyError::Unseal { .. })));
    }

    #[test]
    fn plain_secrets_of_an_earlier_version_are_sealed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "ab".repeat(32);
        let urn = "urn:smn:r:p1:t";
        let earlier = serde_json::json!({"topics": {urn: {
            "topic": {"topic_urn": urn, "name": "t", "display_name": "", "project_id": "p1", "create_time": 1},
            "subscriptions": [{"subscription_urn": format!("{urn}:00"), "topic_urn": urn, "protocol": "http",
                               "endpoint": "http://a.example/", "remark": "", "secret": secret, "create_time": 1}],
        }}});
        let path = dir.path().join("notify").join("topics.json");
        cts_durable::write_atomically(&path, earlier.to_string().as_bytes()).unwrap();
        let key = MasterKey::generate();
        let topics = open(dir.path(), &key);
        assert_eq!(topics.subscription(&format!("{urn}:00")).unwrap().secret, secret);
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&secret), "rewritten sealed");
        assert_eq!(open(dir.path(), &key).subscription(&format!("{urn}:00")).unwrap().secret, secret);
    }
}
