//! What the connected server's version can promise, read at connect.

/// The server's version and what this store relies on from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsServer {
    /// The version the server reported, as it spelled it (`2.9.10`).
    pub version: String,
    /// The version as numbers (`(2, 9, 10)`; `(0, 0, 0)` when unreadable).
    pub parsed: (u32, u32, u32),
    /// The server's largest message (`max_payload`); larger records are
    /// written in chunks.
    pub max_payload: usize,
}

impl NatsServer {
    pub(super) fn new(version: String, max_payload: usize) -> Self {
        let parsed = parse_version(&version);
        Self {
            version,
            parsed,
            max_payload,
        }
    }

    /// True from 2.10: the server can flush every write before acknowledging
    /// it (`jetstream { sync_interval: always }`). Before 2.10 stream files
    /// are flushed every 2 minutes, fixed in the code.
    pub fn can_sync_every_write(&self) -> bool {
        self.parsed >= (2, 10, 0)
    }

    /// True from 2.11: a replicated stream checks the expected last subject
    /// sequence when it applies a write, not only on the leader before
    /// proposing it. Before 2.11 two racing writers can both pass that check;
    /// the store then relies on message-id deduplication, which it sets on
    /// every fenced write (see [`NatsStorage`](super::NatsStorage)).
    pub fn checks_the_fence_when_applying(&self) -> bool {
        self.parsed >= (2, 11, 0)
    }

    /// The warning to log for `replicas`, if this configuration cannot keep
    /// an acknowledged write through a power loss.
    pub(super) fn durability_warning(&self, replicas: usize) -> Option<String> {
        if !self.can_sync_every_write() {
            return Some(format!(
                "NATS server {} flushes stream files to disk every 2 minutes and cannot be told \
                 otherwise: an acknowledged write survives a process crash, not a power loss of \
                 the nodes holding it; run 2.10 or newer with `jetstream {{ sync_interval: always }}` \
                 and 3 replicas",
                self.version
            ));
        }
        if replicas < 3 {
            return Some(format!(
                "NATS store with {replicas} replica(s): an acknowledged write is on one node, and \
                 on its disk only with `jetstream {{ sync_interval: always }}` (the default flushes \
                 every 2 minutes); run 3 replicas for writes that outlive a node"
            ));
        }
        None
    }
}

fn parse_version(version: &str) -> (u32, u32, u32) {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c))) => (a, b, c),
        (Some(Some(a)), Some(Some(b)), None) => (a, b, 0),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_what_they_promise() {
        let old = NatsServer::new("2.9.10".into(), 1 << 20);
        assert_eq!(old.parsed, (2, 9, 10));
        assert!(!old.can_sync_every_write());
        assert!(!old.checks_the_fence_when_applying());
        assert!(old.durability_warning(3).is_some());
        let new = NatsServer::new("2.11.0-beta.2".into(), 1 << 20);
        assert_eq!(new.parsed, (2, 11, 0));
        assert!(new.checks_the_fence_when_applying());
        assert!(new.durability_warning(3).is_none());
        assert!(new.durability_warning(1).is_some());
        assert_eq!(NatsServer::new("nonsense".into(), 0).parsed, (0, 0, 0));
    }
}
