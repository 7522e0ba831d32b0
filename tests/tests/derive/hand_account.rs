//! The bank account written by hand against the bare traits, with the same
//! capabilities the derive gives: stable event names with an alias, events
//! decoded by name (not position), a snapshot of every stored field guarded by
//! a layout fingerprint, policies and a snapshot config.
// BEGIN ACTOR
use dactor_persist::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[derive(Default)]
pub struct Account {
    pub id: String,
    pub owner: String,
    pub balance: u64,
    pub seq: SequenceId,
    pub audit_cache: Vec<String>,
}

impl Account {
    fn on_event(&mut self, e: &AccountEvent) {
        match e {
            AccountEvent::Opened { owner } => self.owner = owner.clone(),
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
        self.audit_cache.push(format!("{e:?}"));
    }
}

const SNAPSHOT_LAYOUT: u64 = 0x5eed_0001;

fn ser_err(e: postcard::Error) -> PersistError {
    PersistError::SerializationFailed(e.to_string())
}

impl Actor for Account {
    type Args = Self;
    type Deps = ();
    fn create(args: Self, _deps: ()) -> Self {
        args
    }
}

impl PersistentActor for Account {
    fn persistence_id(&self) -> PersistenceId {
        PersistenceId::new("Account", &self.id)
    }
    fn persist_failure_policy(&self) -> PersistFailurePolicy {
        PersistFailurePolicy::ReturnError
    }
    fn recovery_failure_policy(&self) -> RecoveryFailurePolicy {
        RecoveryFailurePolicy::Retry {
            max_attempts: Some(2),
            initial_delay: std::time::Duration::from_millis(10),
        }
    }
}

impl EventSourced for Account {
    type Event = AccountEvent;

    fn apply(&mut self, event: &AccountEvent) {
        self.on_event(event)
    }

    fn event_type(&self, event: &AccountEvent) -> &'static str {
        match event {
            AccountEvent::Opened { .. } => "Opened",
            AccountEvent::Deposited { .. } => "Deposited",
            AccountEvent::Withdrawn { .. } => "Withdrawn",
        }
    }

    fn serialize_event(&self, event: &AccountEvent) -> Result<Vec<u8>, PersistError> {
        let name = self.event_type(event);
        let out = postcard::to_allocvec(name).map_err(ser_err)?;
        match event {
            AccountEvent::Opened { owner } => postcard::to_extend(&(owner,), out),
            AccountEvent::Deposited { amount } | AccountEvent::Withdrawn { amount } => {
                postcard::to_extend(&(amount,), out)
            }
        }
        .map_err(ser_err)
    }

    fn deserialize_event(&self, payload: &[u8]) -> Result<AccountEvent, PersistError> {
        let (name, rest) = postcard::take_from_bytes::<&str>(payload).map_err(ser_err)?;
        Ok(match name {
            "Opened" => {
                let (owner,): (String,) = postcard::from_bytes(rest).map_err(ser_err)?;
                AccountEvent::Opened { owner }
            }
            "Deposited" => {
                let (amount,): (u64,) = postcard::from_bytes(rest).map_err(ser_err)?;
                AccountEvent::Deposited { amount }
            }
            "Withdrawn" | "Withdrew" => {
                let (amount,): (u64,) = postcard::from_bytes(rest).map_err(ser_err)?;
                AccountEvent::Withdrawn { amount }
            }
            other => {
                return Err(PersistError::SerializationFailed(format!(
                    "unknown event type `{other}`"
                )));
            }
        })
    }

    fn restore_snapshot(&mut self, payload: Vec<u8>) -> Result<(), PersistError> {
        let Some((layout, rest)) = payload.split_first_chunk::<8>() else {
            return Err(PersistError::SnapshotIncompatible("too short".into()));
        };
        if u64::from_le_bytes(*layout) != SNAPSHOT_LAYOUT {
            return Err(PersistError::SnapshotIncompatible("other layout".into()));
        }
        let (owner, balance): (String, u64) = postcard::from_bytes(rest)
            .map_err(|e| PersistError::SnapshotIncompatible(e.to_string()))?;
        self.owner = owner;
        self.balance = balance;
        Ok(())
    }

    fn snapshot_payload(&self) -> Result<Vec<u8>, PersistError> {
        let out = SNAPSHOT_LAYOUT.to_le_bytes().to_vec();
        postcard::to_extend(&(&self.owner, &self.balance), out).map_err(ser_err)
    }

    fn snapshot_config(&self) -> Option<SnapshotConfig> {
        Some(SnapshotConfig {
            every_n_events: Some(500),
            interval: None,
            retention_count: Some(2),
            delete_events_on_snapshot: false,
        })
    }

    fn last_sequence_id(&self) -> SequenceId {
        self.seq
    }

    fn set_last_sequence_id(&mut self, seq: SequenceId) {
        self.seq = seq;
    }
}
// END ACTOR
