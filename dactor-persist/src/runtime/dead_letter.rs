//! Dead letters: told messages that failed or were never handled. Each is
//! logged (a `warn` event naming the persistence id and the message type)
//! and handed to the runtime's hook, if it has one
//! ([`RuntimeBuilder::dead_letters`](super::RuntimeBuilder::dead_letters)).
//!
//! A `tell` has nobody to answer: without this, a handler that refuses a
//! told message (its reply an `Err`) or a message that reaches a stopped
//! actor would vanish without a trace. An `ask` is not a dead letter: its
//! caller gets the error.

use std::sync::Arc;

use crate::PersistenceId;

/// A told message that failed or was never handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The actor it was sent to.
    pub persistence_id: PersistenceId,
    /// The message's type (`std::any::type_name`).
    pub message_type: &'static str,
    /// What became of it.
    pub reason: DeadLetterReason,
}

/// What became of a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The handler ran and its reply says it failed (an `Err`, see
    /// [`MessageReply::failure`](super::MessageReply::failure)), or it
    /// panicked.
    Failed(String),
    /// The actor was stopped, or stopped before handling it, for this
    /// reason: the message was not handled.
    NotDelivered(String),
}

impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            DeadLetterReason::Failed(why) => write!(
                f,
                "told message `{}` to `{}` failed: {why}",
                self.message_type, self.persistence_id
            ),
            DeadLetterReason::NotDelivered(why) => write!(
                f,
                "told message `{}` to `{}` was not handled: the actor is stopped ({why})",
                self.message_type, self.persistence_id
            ),
        }
    }
}

/// The runtime's dead-letter hook.
pub(crate) type DeadLetterHook = Arc<dyn Fn(DeadLetter) + Send + Sync>;

/// Logs a dead letter and hands it to the hook. A panicking hook is logged
/// and otherwise ignored: it must not take the actor down.
pub(crate) fn report(hook: Option<&DeadLetterHook>, letter: DeadLetter) {
    tracing::warn!(
        persistence_id = %letter.persistence_id,
        message_type = letter.message_type,
        "dead letter: {letter}"
    );
    if let Some(hook) = hook
        && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(letter))).is_err()
    {
        tracing::error!("the dead-letter hook panicked");
    }
}
