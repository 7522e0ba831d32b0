//! Projections on NATS: each projection's record (offset, pause, source)
//! as the one value of a subject, updated under the subject's fence (so an
//! offset moves only from the offset expected), and leases in a stream of
//! their own whose messages expire: a lease is a message written expecting
//! the subject empty, renewed while its guard lives, and gone when its
//! holder stops renewing it (a crash) or drops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::io::{Fenced, Published};
use super::layout::{Kind, id_of};
use super::record::{Body, Envelope, What};
use super::{Inner, NatsStorage};
use crate::projection::store::{check_name, conflict};
use crate::projection::{LeaseGuard, ProjectionLease, ProjectionRecord, ProjectionStore};
use crate::query::{EventFilter, Offset};
use crate::{PersistError, PersistenceId, SequenceId};

/// How many times an update is tried against a record that moved under it.
const MAX_TRIES: usize = 64;

/// A projection's record as stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    offset: Option<Offset>,
    paused: bool,
    source: Option<String>,
}

impl Inner {
    fn projection_damaged(name: &str, detail: String) -> PersistError {
        PersistError::CorruptEntry {
            sequence_id: SequenceId::ZERO,
            detail: format!("the record of projection `{name}`: {detail}"),
        }
    }

    /// The record of `name` and the stream sequence of its message (0: none).
    async fn projection(
        &self,
        name: &str,
        deadline: Instant,
    ) -> Result<(ProjectionRecord, u64), PersistError> {
        let key = PersistenceId(name.to_owned());
        let place = self.layout.place(&key, Kind::Projection);
        let damaged = |detail: String| Self::projection_damaged(name, detail);
        let Some(current) = self
            .current(
                &key,
                &place,
                [What::Projection, What::Projection],
                deadline,
                &damaged,
            )
            .await?
        else {
            return Ok((ProjectionRecord::default(), 0));
        };
        let Body::Inline(bytes) = &current.envelope.body else {
            return Err(damaged("its body is not inline".into()));
        };
        let stored: Stored =
            postcard::from_bytes(bytes).map_err(|e| damaged(format!("does not decode: {e}")))?;
        if stored.name != name {
            return Err(damaged(format!("it names `{}`", stored.name)));
        }
        let source = match stored.source {
            None => None,
            Some(text) => Some(
                text.parse::<EventFilter>()
                    .map_err(|e| damaged(format!("its source: {e}")))?,
            ),
        };
        Ok((
            ProjectionRecord {
                offset: stored.offset,
                paused: stored.paused,
                source,
            },
            current.stream_seq,
        ))
    }

    /// Reads the record of `name`, lets `change` update it (or refuse), and
    /// writes it back under the fence; again when the record moved.
    async fn update_projection(
        &self,
        name: &str,
        change: impl Fn(&mut ProjectionRecord) -> Result<(), PersistError> + Send + Sync,
    ) -> Result<(), PersistError> {
        check_name(name)?;
        let deadline = self.deadline();
        let key = PersistenceId(name.to_owned());
        let place = self.layout.place(&key, Kind::Projection);
        for _ in 0..MAX_TRIES {
            let (mut record, at) = self.projection(name, deadline).await?;
            change(&mut record)?;
            let stored = Stored {
                name: name.to_owned(),
                offset: record.offset,
                paused: record.paused,
                source: record.source.as_ref().map(ToString::to_string),
            };
            let bytes = postcard::to_allocvec(&stored)
                .map_err(|e| PersistError::SerializationFailed(e.to_string()))?;
            let envelope = Envelope {
                what: What::Projection,
                nonce: self.nonce(),
                deleted_to: 0,
                highest: 0,
                first: 0,
                last: 0,
                fills: 0,
                pid: name.to_owned(),
                body: Body::Inline(bytes),
            };
            if self
                .replace(&key, &place, "p", at, &envelope, deadline)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(self.unavailable(
            "saving a projection's record",
            &place.subject,
            &format!("the record moved under {MAX_TRIES} tries in a row"),
        ))
    }

    /// Writes the lease message of `name`, expecting `expected` last: `Ok(Some(seq))`
    /// when it is stored, `Ok(None)` when another holder's message is there.
    async fn put_lease(
        &self,
        name: &str,
        nonce: [u8; 16],
        expected: u64,
        deadline: Instant,
    ) -> Result<Option<u64>, PersistError> {
        let subject = self.layout.lease_subject(name);
        let envelope = Envelope {
            what: What::Lease,
            nonce,
            deleted_to: 0,
            highest: 0,
            first: 0,
            last: 0,
            fills: 0,
            pid: name.to_owned(),
            body: Body::None,
        };
        let fence = Fenced {
            subject: &subject,
            expected,
            msg_id: format!("l.{}.{expected}", super::io::hex(&nonce)),
            rollup: true,
        };
        Ok(
            match self
                .publish_fenced(&fence, Bytes::from(envelope.encode()), deadline)
                .await?
            {
                Published::Stored(at) | Published::Duplicate(at) => Some(at),
                Published::WrongLast => None,
            },
        )
    }
}

/// A held lease: renewed in the background, released when dropped.
struct NatsLease {
    held: Arc<AtomicBool>,
    renewing: tokio::task::JoinHandle<()>,
    release: Option<(Arc<Inner>, String, [u8; 16])>,
}

impl LeaseGuard for NatsLease {
    fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
}

impl Drop for NatsLease {
    fn drop(&mut self) {
        self.renewing.abort();
        let Some((inner, name, nonce)) = self.release.take() else {
            return;
        };
        if !self.held.load(Ordering::Acquire) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let subject = inner.layout.lease_subject(&name);
                let deadline = inner.deadline();
                // Remove our message only: a later holder's stays.
                if let Ok(Some(message)) = inner.last_on(&inner.leases, &subject, deadline).await
                    && Envelope::decode(&message.payload).is_ok_and(|e| e.nonce == nonce)
                {
                    let _ = inner
                        .leases
                        .purge()
                        .filter(&subject)
                        .sequence(message.sequence.saturating_add(1))
                        .await;
                }
            });
        }
    }
}

/// Renews the lease every quarter of its time to live, expecting its own
/// last message. The server drops a lease message its time to live after
/// storing it; the holder gives the lease up once half of that passed since
/// it sent its last renewal that was stored (or at once when another holder
/// has it), leaving the other half for its last request and the clocks.
async fn renew(
    inner: Arc<Inner>,
    name: String,
    nonce: [u8; 16],
    mut at: u64,
    held: Arc<AtomicBool>,
) {
    let ttl = inner.lease_ttl;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 4).await;
        let give_up = renewed + ttl / 2;
        if Instant::now() >= give_up {
            break;
        }
        let sent = Instant::now();
        match inner.put_lease(&name, nonce, at, give_up).await {
            Ok(Some(next)) => {
                at = next;
                renewed = sent;
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    held.store(false, Ordering::Release);
}

#[async_trait]
impl ProjectionStore for NatsStorage {
    async fn load_projection(&self, name: &str) -> Result<ProjectionRecord, PersistError> {
        check_name(name)?;
        Ok(self.inner.projection(name, self.inner.deadline()).await?.0)
    }

    async fn advance_projection(
        &self,
        name: &str,
        expected: Option<Offset>,
        to: Offset,
    ) -> Result<(), PersistError> {
        self.inner
            .update_projection(name, |record| {
                if record.offset != expected {
                    return Err(conflict(name, expected, record.offset));
                }
                record.offset = Some(to);
                Ok(())
            })
            .await
    }

    async fn set_projection_offset(
        &self,
        name: &str,
        offset: Option<Offset>,
    ) -> Result<(), PersistError> {
        self.inner
            .update_projection(name, |record| {
                record.offset = offset;
                Ok(())
            })
            .await
    }

    async fn set_projection_paused(&self, name: &str, paused: bool) -> Result<(), PersistError> {
        self.inner
            .update_projection(name, |record| {
                record.paused = paused;
                Ok(())
            })
            .await
    }

    async fn register_projection(
        &self,
        name: &str,
        source: &EventFilter,
    ) -> Result<(), PersistError> {
        self.inner
            .update_projection(name, |record| {
                record.source = Some(source.clone());
                Ok(())
            })
            .await
    }

    async fn projection_names(&self) -> Result<Vec<String>, PersistError> {
        let inner = &self.inner;
        let deadline = inner.deadline();
        let mut names = Vec::new();
        for shard in 0..inner.streams.len() {
            let filter = format!("{}.{shard}.p.*", inner.layout.subject_prefix);
            let mut subjects = inner.streams[shard]
                .info_with_subjects(&filter)
                .await
                .map_err(|e| inner.unavailable("listing projections", &filter, &e.to_string()))?;
            while let Some(subject) = subjects.next().await {
                let (subject, _) = subject.map_err(|e| {
                    inner.unavailable("listing projections", &filter, &e.to_string())
                })?;
                let token = subject.rsplit('.').next().unwrap_or_default();
                match id_of(token) {
                    Some(name) => names.push(name),
                    None => {
                        if let Some(message) = inner.last_message(shard, &subject, deadline).await?
                        {
                            let envelope = Envelope::decode(&message.payload)
                                .map_err(|e| Inner::projection_damaged(&subject, e))?;
                            names.push(envelope.pid);
                        }
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn try_lease(&self, name: &str) -> Result<Option<ProjectionLease>, PersistError> {
        check_name(name)?;
        let inner = &self.inner;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            PersistError::StorageUnavailable(
                "NATS store: a projection lease is renewed by a task, which needs a tokio runtime"
                    .into(),
            )
        })?;
        let deadline = inner.deadline();
        let nonce = inner.nonce();
        // Free when the subject is empty: never taken, released, or expired.
        let Some(at) = inner.put_lease(name, nonce, 0, deadline).await? else {
            return Ok(None);
        };
        let held = Arc::new(AtomicBool::new(true));
        let renewing = handle.spawn(renew(
            inner.clone(),
            name.to_owned(),
            nonce,
            at,
            held.clone(),
        ));
        Ok(Some(ProjectionLease::new(NatsLease {
            held,
            renewing,
            release: Some((inner.clone(), name.to_owned(), nonce)),
        })))
    }
}
