//! The replicated store: [`NatsStorage`], journals, snapshots and durable
//! state in NATS JetStream streams, replicated by the server's RAFT groups.
//!
//! [`NatsStorage`]'s docs say how: the layout, the fence, what an
//! acknowledgement means on each server version, and the read side.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream};
use async_trait::async_trait;
use tokio::sync::watch;

use super::JournalBounds;
use super::{JournalStorage, NewEvent, SharedStoreProvider, SnapshotStorage, StateStorage};
use crate::query::{EventEnvelope, EventFilter, EventPage, EventQueries, Offset, StatePage};
use crate::{JournalEntry, PersistError, PersistenceId, SequenceId, SnapshotEntry};

mod io;
mod journal;
mod layout;
mod projection;
mod query;
mod record;
mod scan;
mod server;
mod values;

pub use server::NatsServer;

use layout::{Kind, Layout};

/// What the store knows of a subject's last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// Its stream sequence (0: the subject is empty).
    stream_seq: u64,
    /// The journal's highest sequence after it.
    highest: i64,
    /// How far the journal's events were deleted.
    deleted_to: i64,
    /// How many batches went into gaps below the highest sequence.
    fills: u64,
    /// For a snapshot or state subject: its value is in chunks.
    chunked: bool,
}

impl Head {
    const EMPTY: Head = Head {
        stream_seq: 0,
        highest: 0,
        deleted_to: 0,
        fills: 0,
        chunked: false,
    };
}

/// The most subjects whose last message is remembered; past it the memory
/// starts over (it only saves a read before a write).
const MAX_REMEMBERED: usize = 100_000;

/// Remembered heads, and where reads of a journal left off.
#[derive(Default)]
struct Cache {
    heads: HashMap<String, Head>,
    /// Journal subject -> (next event sequence, stream sequence to read on from).
    hints: HashMap<String, (i64, u64)>,
}

pub(super) struct Inner {
    js: jetstream::Context,
    client: async_nats::Client,
    streams: Vec<Stream>,
    /// The stream of projection leases (messages expire after `lease_ttl`).
    leases: Stream,
    lease_ttl: Duration,
    layout: Layout,
    server: NatsServer,
    op_timeout: Duration,
    /// The largest body written inline, and the size of chunks above it.
    chunk_size: usize,
    cache: Mutex<Cache>,
    nonce_key: (u64, u64),
    nonce_count: AtomicU64,
    /// Bumped after every write of this store: wakes its live queries.
    commits: watch::Sender<u64>,
    /// How often a caught-up live query reads again (other processes' writes).
    poll_interval: Duration,
}

impl Inner {
    /// Wakes live queries after a write.
    fn committed(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache holds no invariant a panic could break mid-way.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, subject: &str) -> Option<Head> {
        self.cache().heads.get(subject).copied()
    }

    fn remember(&self, subject: &str, head: Head) {
        let mut cache = self.cache();
        if cache.heads.len() >= MAX_REMEMBERED && !cache.heads.contains_key(subject) {
            cache.heads.clear();
        }
        cache.heads.insert(subject.to_owned(), head);
    }

    fn forget(&self, subject: &str) {
        self.cache().heads.remove(subject);
    }

    fn hint(&self, subject: &str, from: i64) -> Option<u64> {
        match self.cache().hints.get(subject) {
            Some(&(next, stream_seq)) if next <= from => Some(stream_seq),
            _ => None,
        }
    }

    fn hint_next(&self, subject: &str, next: i64, stream_seq: u64) {
        let mut cache = self.cache();
        if cache.hints.len() >= MAX_REMEMBERED && !cache.hints.contains_key(subject) {
            cache.hints.clear();
        }
        cache.hints.insert(subject.to_owned(), (next, stream_seq));
    }

    fn forget_hints(&self, subject: &str) {
        self.cache().hints.remove(subject);
    }

    /// A value no other write of any process will carry: a per-store random
    /// key and a counter, mixed.
    fn nonce(&self) -> [u8; 16] {
        let count = self.nonce_count.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.nonce_key.0.to_le_bytes());
        out[8..].copy_from_slice(&(self.nonce_key.1 ^ count).to_le_bytes());
        out
    }
}

/// Two random words from the standard library's randomly keyed hasher.
fn random_key() -> (u64, u64) {
    let state = std::collections::hash_map::RandomState::new();
    let mut a = state.build_hasher();
    a.write_u64(std::process::id().into());
    let mut b = std::collections::hash_map::RandomState::new().build_hasher();
    b.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (a.finish(), b.finish())
}

/// Options for [`NatsStorage`]; see [`NatsStorage::builder`].
#[derive(Debug, Clone)]
pub struct NatsStorageBuilder {
    urls: String,
    stream_prefix: String,
    subject_prefix: String,
    shards: u32,
    replicas: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    operation_timeout: Duration,
    duplicate_window: Duration,
    poll_interval: Duration,
    lease_ttl: Duration,
}

impl NatsStorageBuilder {
    /// The prefix of the streams' names (`DACTOR`: streams `DACTOR_0`, ...).
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = prefix.into();
        self
    }

    /// The prefix of every subject the store writes (`dactor`). Two stores
    /// on one server need different stream and subject prefixes.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// How many streams ids are spread over (8). Fixed for the life of the
    /// data: a store refuses to open streams made with another count.
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// How many servers hold each stream (1): 3 or 5 on a cluster. Used when
    /// the streams are created; existing streams keep theirs (change it with
    /// the `nats` tool).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How long connecting may take (5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request to the server may take before it is tried again
    /// (2 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long one storage operation may take in all, its requests tried
    /// again through leader elections and reconnections, before it fails
    /// with [`PersistError::StorageUnavailable`] (15 s).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The streams' deduplication window (2 minutes): how long a write's
    /// message id is remembered. It must outlast
    /// [`operation_timeout`](Self::operation_timeout), so that a write tried
    /// again after a lost answer is recognised.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How long a projection's lease outlives its holder (10 s, 1 s at
    /// least): a holder renews it every quarter of that and gives it up
    /// after half of it without a renewal; one that crashed frees it within
    /// about this long.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How often a live query that has caught up reads again, for writes of
    /// other processes (1 s; this store's own writes wake it at once).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Connects, creates the streams that do not exist yet, and checks those
    /// that do (tried again through elections for up to the
    /// [operation timeout](Self::operation_timeout)).
    ///
    /// # Errors
    ///
    /// [`PersistError::StorageUnavailable`] when no server answers, or
    /// JetStream is not enabled; [`PersistError::IncompatibleStore`] for
    /// names that cannot be used, or streams made for another layout.
    pub async fn connect(self) -> Result<NatsStorage, PersistError> {
        let layout = Layout::new(self.stream_prefix, self.subject_prefix, self.shards)?;
        if self.lease_ttl < Duration::from_secs(1) {
            return Err(PersistError::IncompatibleStore(format!(
                "NATS store: a lease time to live of {:?} is too short (1 s at least: a holder \
                 renews every quarter of it)",
                self.lease_ttl
            )));
        }
        if self.duplicate_window <= self.operation_timeout {
            return Err(PersistError::IncompatibleStore(format!(
                "NATS store: the duplicate window ({:?}) must be longer than the operation \
                 timeout ({:?}), or a write tried again could be stored twice",
                self.duplicate_window, self.operation_timeout
            )));
        }
        let mut addrs = Vec::new();
        for url in self
            .urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let addr = url.parse::<async_nats::ServerAddr>().map_err(|e| {
                PersistError::IncompatibleStore(format!("NATS store: bad server URL {url:?}: {e}"))
            })?;
            addrs.push(addr);
        }
        if addrs.is_empty() {
            return Err(PersistError::IncompatibleStore(
                "NATS store: no server URL given".into(),
            ));
        }
        let client = async_nats::ConnectOptions::new()
            .name("dactor-persist")
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            .connect(addrs)
            .await
            .map_err(|e| {
                PersistError::StorageUnavailable(format!(
                    "NATS store: cannot connect to {}: {e}",
                    self.urls
                ))
            })?;
        let info = client.server_info();
        let server = NatsServer::new(info.version.clone(), info.max_payload);
        let js = jetstream::context::ContextBuilder::new()
            .timeout(self.request_timeout)
            .build(client.clone());
        let mut streams = Vec::with_capacity(layout.shards as usize);
        for shard in 0..layout.shards as usize {
            streams.push(
                open_stream(
                    &js,
                    &layout,
                    shard,
                    self.replicas,
                    self.duplicate_window,
                    self.operation_timeout,
                )
                .await?,
            );
        }
        let leases = open_lease_stream(
            &js,
            &layout,
            self.replicas,
            self.lease_ttl,
            self.operation_timeout,
        )
        .await?;
        // Room for the envelope, its id and the headers beside the body.
        let chunk_size = info.max_payload.saturating_sub(8 * 1024).max(4 * 1024);
        if let Some(warning) = server.durability_warning(self.replicas) {
            tracing::warn!(server = %server.version, replicas = self.replicas, "{warning}");
        }
        Ok(NatsStorage {
            inner: Arc::new(Inner {
                js,
                client,
                streams,
                leases,
                lease_ttl: self.lease_ttl,
                layout,
                server,
                op_timeout: self.operation_timeout,
                chunk_size,
                cache: Mutex::new(Cache::default()),
                nonce_key: random_key(),
                nonce_count: AtomicU64::new(0),
                commits: watch::channel(0).0,
                poll_interval: self.poll_interval,
            }),
        })
    }
}

/// Opens or creates a stream, tried again for up to `patience`: servers
/// answer a creation racing another one, or made during an election (a
/// cluster just restarted), with errors that a moment later are gone.
async fn create_stream(
    js: &jetstream::Context,
    config: Config,
    patience: Duration,
) -> Result<Stream, String> {
    let give_up = tokio::time::Instant::now() + patience;
    let mut wait = io::FIRST_PAUSE;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(stream = %config.name, error = %e, "NATS store: stream not opened yet");
                io::pause(give_up, &mut wait, e.to_string()).await?;
            }
        }
    }
}

/// Opens the stream of `shard`, creating it when missing; an existing one
/// must take this layout's subjects and say it was made for this layout.
async fn open_stream(
    js: &jetstream::Context,
    layout: &Layout,
    shard: usize,
    replicas: usize,
    duplicate_window: Duration,
    patience: Duration,
) -> Result<Stream, PersistError> {
    let name = layout.stream_name(shard);
    let subjects = layout.stream_subjects(shard);
    let config = Config {
        name: name.clone(),
        subjects: vec![subjects.clone()],
        description: Some(layout.description(shard)),
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        num_replicas: replicas.max(1),
        duplicate_window,
        allow_rollup: true,
        ..Default::default()
    };
    let stream = create_stream(js, config, patience).await.map_err(|e| {
        PersistError::StorageUnavailable(format!(
            "NATS store: cannot open or create stream `{name}` (is JetStream enabled, and are \
             there {replicas} servers for its replicas?): {e}"
        ))
    })?;
    let found = &stream.cached_info().config;
    let expected = layout.description(shard);
    if found.description.as_deref() != Some(expected.as_str())
        || found.subjects != [subjects.clone()]
    {
        return Err(PersistError::IncompatibleStore(format!(
            "NATS store: stream `{name}` exists with subjects {:?} and description {:?}; this \
             store expects {subjects:?} and {expected:?} (another shard count, layout or \
             application: choose other prefixes)",
            found.subjects, found.description
        )));
    }
    if !found.allow_rollup {
        return Err(PersistError::IncompatibleStore(format!(
            "NATS store: stream `{name}` does not allow roll-ups, which the store needs"
        )));
    }
    if found.num_replicas != replicas.max(1) {
        tracing::warn!(
            stream = %name,
            found = found.num_replicas,
            asked = replicas,
            "NATS store: the stream keeps its replica count; change it with the nats tool"
        );
    }
    Ok(stream)
}

/// Opens (or creates) the stream of projection leases, whose messages
/// expire after `ttl`.
async fn open_lease_stream(
    js: &jetstream::Context,
    layout: &Layout,
    replicas: usize,
    ttl: Duration,
    patience: Duration,
) -> Result<Stream, PersistError> {
    let name = layout.lease_stream();
    let subjects = format!("{}.lease.*", layout.subject_prefix);
    let config = Config {
        name: name.clone(),
        subjects: vec![subjects.clone()],
        description: Some(format!(
            "dactor-persist projection leases, layout {}",
            layout::LAYOUT_VERSION
        )),
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        max_age: ttl,
        allow_rollup: true,
        ..Default::default()
    };
    let stream = create_stream(js, config, patience).await.map_err(|e| {
        PersistError::StorageUnavailable(format!(
            "NATS store: cannot open or create stream `{name}`: {e}"
        ))
    })?;
    let found = &stream.cached_info().config;
    if found.subjects != [subjects.clone()] || found.max_age != ttl {
        return Err(PersistError::IncompatibleStore(format!(
            "NATS store: stream `{name}` exists with subjects {:?} and a message age of {:?}; \
             this store expects {subjects:?} and {ttl:?} (the lease time to live)",
            found.subjects, found.max_age
        )));
    }
    Ok(stream)
}

/// Journals, snapshots and durable states in NATS JetStream (2.9 or newer),
/// one server or replicated across a cluster.
///
/// Cheap to clone: clones share one connection.
///
/// # Layout
///
/// Ids are spread over `shards` streams (`DACTOR_0` .. `DACTOR_7` by
/// default) by a stable hash, so that millions of ids do not make one
/// stream's subject index hold millions of entries. Each id owns a journal
/// subject (one message per batch: a batch is stored whole or not at all,
/// with no reliance on the server's atomic batches, which arrived in 2.12), a
/// snapshot subject and a state subject whose last message is the value.
/// Every message is checksummed and names its id; values above the server's
/// `max_payload` are written in chunks that the message lists.
///
/// # The fence
///
/// Every write names the stream sequence of the subject's last message it
/// expects (`Nats-Expected-Last-Subject-Sequence`) and a message id derived
/// from that expectation (`Nats-Msg-Id`). Of two writers expecting the same
/// last message, exactly one is stored: the other is refused (it expected a
/// message that is no longer last) or deduplicated (same id), and is told
/// [`PersistError::SequenceConflict`]. The message id is what makes this
/// hold on servers before 2.11, whose replicated streams check the expected
/// sequence on the leader before proposing a write rather than when applying
/// it (two writers racing through different nodes were both accepted 118
/// times in 200 on 2.9.10 without it, never with it;
/// [`NatsServer::checks_the_fence_when_applying`]). A write whose answer
/// was lost and that is tried again is recognised by the nonce it carries,
/// and succeeds.
///
/// What the message id cannot close on 2.9 and 2.10: when the stream's
/// leader changes while a write is in flight, the new leader can accept a
/// second write with the same expectation before it has applied the first
/// (its deduplication is rebuilt from applied messages only). Seen here once
/// in three runs of SIGKILLing every node of the cluster under load, as a
/// retried write stored twice. Reads never return a wrong journal for it: a
/// record that repeats the events of the one before is the same write,
/// read once; two different events at one sequence fail the read with
/// [`PersistError::CorruptEntry`] saying so. Servers from 2.11 check the
/// expectation when applying.
///
/// Reads go to the stream's leader, which answers from what it has applied:
/// right after a leader change (seen after every node restarted, and from a
/// paused leader that resumed and still answered as one) a read can miss
/// the newest writes. A journal read checks that it reached the last record
/// the leader named: when answers disagree it fails with
/// [`PersistError::StorageUnavailable`] (try again), never returning part of
/// a journal as the whole. A read that is stale throughout cannot be told
/// from a fresh one (a resumed ex-leader of 2.9 was seen answering, for a
/// moment, from a log it had not reconciled, including a write it took
/// while cut off that the cluster never committed); nothing wrong is
/// written from it: an actor recovered
/// from it writes at a sequence already taken and is told
/// [`PersistError::SequenceConflict`]. A deletion whose scan comes back
/// short keeps its records (hidden by its marker) rather than purge them.
///
/// Writes at the end of a journal need one request. A write below its
/// highest sequence (into a gap, never the runtime's way) reads the journal
/// to find whether the sequences are free, and marks the journal so that
/// later reads sort it. Subjects are never purged to empty (a deletion
/// leaves a marker, a deleted state a tombstone), since an empty subject
/// would accept a write expecting nothing.
///
/// # What an acknowledgement means
///
/// An acknowledged write is held by a majority of the stream's replicas
/// (all of one with `replicas(1)`), in their memory or files, not
/// necessarily on their disks:
///
/// | server | replicas | survives a process crash of | survives a power loss of |
/// |---|---|---|---|
/// | 2.9 | 1 | the node | nothing promised (files flushed every 2 minutes) |
/// | 2.9 | 3 | any minority; all nodes (the OS has the writes) | nothing promised |
/// | 2.10+ default | 3 | any minority; all nodes | a minority |
/// | 2.10+, `sync_interval: always` | 3 | any minority; all nodes | all nodes |
///
/// Run 2.10 or newer with `jetstream { sync_interval: always }` and
/// `replicas(3)` in production. The store reads the server's version when it
/// connects ([`NatsStorage::server`]) and logs a warning when the
/// configuration cannot keep an acknowledged write through a power loss.
/// Measured on 2.9.10 (this project's machines): a SIGKILL of the stream
/// leader during appends and a SIGKILL of every node lost no acknowledged
/// write (the `nats` test target proves both on every CI run).
///
/// # Examples
///
/// ```no_run
/// use dactor_persist::*;
///
/// # async fn run() -> Result<(), PersistError> {
/// // One server:
/// let store = NatsStorage::connect("nats://127.0.0.1:4222").await?;
/// // A cluster, streams replicated three times:
/// let store = NatsStorage::builder("nats://10.0.0.1:4222,nats://10.0.0.2:4222")
///     .replicas(3)
///     .connect()
///     .await?;
/// let id = PersistenceId::new("Account", "a-1");
/// store.write_event(&id, SequenceId(1), "Opened", b"...").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for NatsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsStorage")
            .field("server", &self.inner.server)
            .field("streams", &self.inner.layout.stream_prefix)
            .field("subjects", &self.inner.layout.subject_prefix)
            .field("shards", &self.inner.layout.shards)
            .finish_non_exhaustive()
    }
}

impl NatsStorage {
    /// Connects to `urls` (one URL, or several separated by commas) with the
    /// default options: streams `DACTOR_0` to `DACTOR_7`, one replica.
    ///
    /// # Errors
    ///
    /// As [`NatsStorageBuilder::connect`].
    pub async fn connect(urls: &str) -> Result<Self, PersistError> {
        Self::builder(urls).connect().await
    }

    /// Options, then [`connect`](NatsStorageBuilder::connect).
    pub fn builder(urls: impl Into<String>) -> NatsStorageBuilder {
        NatsStorageBuilder {
            urls: urls.into(),
            stream_prefix: "DACTOR".into(),
            subject_prefix: "dactor".into(),
            shards: 8,
            replicas: 1,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(15),
            duplicate_window: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(10),
        }
    }

    /// The server this store connected to, and what its version promises.
    pub fn server(&self) -> &NatsServer {
        &self.inner.server
    }

    /// The names of the streams the store uses: one per shard, then the
    /// stream of projection leases.
    pub fn stream_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.inner.layout.shards as usize)
            .map(|s| self.inner.layout.stream_name(s))
            .collect();
        names.push(self.inner.layout.lease_stream());
        names
    }

    /// The stream holding the records of `persistence_id`.
    pub fn stream_of(&self, persistence_id: &PersistenceId) -> String {
        let place = self.inner.layout.place(persistence_id, Kind::Journal);
        self.inner.layout.stream_name(place.shard)
    }

    /// The subject holding the journal of `persistence_id` (in
    /// [`stream_of`](Self::stream_of)): for looking at it with the `nats`
    /// tool. Its snapshot and state subjects replace `.j.` by `.s.` and `.d.`.
    pub fn journal_subject(&self, persistence_id: &PersistenceId) -> String {
        self.inner
            .layout
            .place(persistence_id, Kind::Journal)
            .subject
    }

    /// Sends what is buffered and closes the connection; later operations
    /// fail with [`PersistError::StorageUnavailable`].
    pub async fn close(&self) {
        let _ = self.inner.client.drain().await;
    }
}

#[async_trait]
impl JournalStorage for NatsStorage {
    async fn write_event(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        event_type: &str,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.write_events(
            persistence_id,
            &[NewEvent::new(sequence_id, event_type, payload)],
        )
        .await
    }

    async fn write_event_batch(
        &self,
        persistence_id: &PersistenceId,
        entries: &[(SequenceId, &str, &[u8])],
    ) -> Result<(), PersistError> {
        let events: Vec<NewEvent<'_>> = entries
            .iter()
            .map(|&(seq, event_type, payload)| NewEvent::new(seq, event_type, payload))
            .collect();
        self.inner.append(persistence_id, &events).await?;
        self.inner.committed();
        Ok(())
    }

    async fn write_events(
        &self,
        persistence_id: &PersistenceId,
        events: &[NewEvent<'_>],
    ) -> Result<(), PersistError> {
        self.inner.append(persistence_id, events).await?;
        self.inner.committed();
        Ok(())
    }

    async fn read_events(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        self.read_events_page(persistence_id, from_sequence, usize::MAX)
            .await
    }

    async fn read_events_page(
        &self,
        persistence_id: &PersistenceId,
        from_sequence: SequenceId,
        max: usize,
    ) -> Result<Vec<JournalEntry>, PersistError> {
        let events = self
            .inner
            .read_page(persistence_id, from_sequence, max.max(1))
            .await?;
        Ok(events.into_iter().map(|e| e.entry).collect())
    }

    async fn read_highest_sequence(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SequenceId>, PersistError> {
        let bounds = self.read_bounds(persistence_id).await?;
        Ok((bounds.highest.0 > 0).then_some(bounds.highest))
    }

    async fn read_bounds(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<JournalBounds, PersistError> {
        let place = self.inner.layout.place(persistence_id, Kind::Journal);
        let deadline = self.inner.deadline();
        let (head, _) = self
            .inner
            .journal_head(persistence_id, &place, deadline)
            .await?;
        Ok(JournalBounds {
            deleted_to: SequenceId(head.deleted_to),
            highest: SequenceId(head.highest),
        })
    }

    async fn delete_events_to(
        &self,
        persistence_id: &PersistenceId,
        to_sequence: SequenceId,
    ) -> Result<(), PersistError> {
        self.inner.delete_to(persistence_id, to_sequence).await?;
        self.inner.committed();
        Ok(())
    }
}

#[async_trait]
impl SnapshotStorage for NatsStorage {
    async fn save_snapshot(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.inner
            .save_snapshot(persistence_id, sequence_id, payload)
            .await
    }

    async fn load_latest_snapshot(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<SnapshotEntry>, PersistError> {
        self.inner.load_snapshot(persistence_id).await
    }

    async fn delete_snapshots_before(
        &self,
        persistence_id: &PersistenceId,
        sequence_id: SequenceId,
    ) -> Result<(), PersistError> {
        self.inner
            .delete_snapshots_before(persistence_id, sequence_id)
            .await
    }
}

#[async_trait]
impl StateStorage for NatsStorage {
    async fn save_state(
        &self,
        persistence_id: &PersistenceId,
        payload: &[u8],
    ) -> Result<(), PersistError> {
        self.inner.save_state(persistence_id, payload).await?;
        self.inner.committed();
        Ok(())
    }

    async fn load_state(
        &self,
        persistence_id: &PersistenceId,
    ) -> Result<Option<Vec<u8>>, PersistError> {
        self.inner.load_state(persistence_id).await
    }

    async fn delete_state(&self, persistence_id: &PersistenceId) -> Result<(), PersistError> {
        self.inner.delete_state(persistence_id).await?;
        self.inner.committed();
        Ok(())
    }
}

/// The read side. Events of one id and the list of ids work on any layout;
/// queries across ids (all events, by entity type, by tag) and state
/// changes need the total order of one stream, so a store made with
/// `.shards(1)`: on more shards they fail with
/// [`PersistError::IncompatibleStore`] saying so. Tags are filtered as the
/// events are read (JetStream has no index on them), and listing ids lists
/// every journal subject.
#[async_trait]
impl EventQueries for NatsStorage {
    async fn read_events_after(
        &self,
        filter: &EventFilter,
        after: Offset,
        max: usize,
    ) -> Result<EventPage, PersistError> {
        self.inner.events_after(filter, after, max.max(1)).await
    }

    async fn event_head(&self) -> Result<Offset, PersistError> {
        self.inner.event_head().await
    }

    async fn read_envelopes(
        &self,
        persistence_id: &PersistenceId,
        from: SequenceId,
        max: usize,
    ) -> Result<Vec<EventEnvelope>, PersistError> {
        self.inner.envelopes(persistence_id, from, max.max(1)).await
    }

    async fn read_persistence_ids(
        &self,
        entity_type: Option<&str>,
        after: Option<&PersistenceId>,
        max: usize,
    ) -> Result<Vec<PersistenceId>, PersistError> {
        self.inner.persistence_ids(entity_type, after, max).await
    }

    async fn read_state_changes(
        &self,
        entity_type: Option<&str>,
        after: Offset,
        max: usize,
    ) -> Result<StatePage, PersistError> {
        self.inner
            .state_changes(entity_type, after, max.max(1))
            .await
    }

    async fn state_head(&self) -> Result<Offset, PersistError> {
        self.inner.state_head().await
    }

    fn watch_commits(&self) -> watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval
    }
}

/// A [`StorageProvider`](crate::StorageProvider) over one [`NatsStorage`]
/// for every id.
///
/// # Examples
///
/// ```no_run
/// use dactor_persist::*;
///
/// # async fn run() -> Result<(), PersistError> {
/// let provider = NatsStorageProvider::connect("nats://127.0.0.1:4222").await?;
/// let id = PersistenceId::new("Account", "a-1");
/// assert!(provider.journal(&id).is_some());
/// # Ok(()) }
/// ```
pub type NatsStorageProvider = SharedStoreProvider<NatsStorage>;

impl SharedStoreProvider<NatsStorage> {
    /// Connects to `urls` with the default options and provides the store.
    ///
    /// # Errors
    ///
    /// As [`NatsStorage::connect`].
    pub async fn connect(urls: &str) -> Result<Self, PersistError> {
        Ok(Self::from_storage(Arc::new(
            NatsStorage::connect(urls).await?,
        )))
    }
}
