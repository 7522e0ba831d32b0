//! Messages and handlers: what an actor hosted by the runtime can receive.

use async_trait::async_trait;

use super::Context;
use crate::PersistentActor;

/// A message an actor can handle, with the type of its reply.
///
/// # Examples
///
/// ```
/// use dactor_persist::runtime::Message;
///
/// struct Deposit { amount: u64 }
/// impl Message for Deposit { type Reply = Result<u64, String>; }
/// ```
pub trait Message: Send + 'static {
    /// What the handler answers.
    type Reply: MessageReply;
}

/// A handler's answer, which may say that the message failed: a told
/// message whose answer is a failure is a [dead letter](super::DeadLetter),
/// logged and handed to the runtime's hook, since nobody else hears of it.
///
/// Implemented for `Result<T, E: Display>` (an `Err` is a failure) and for
/// the standard library's other common types (never a failure). A reply
/// type of your own implements it in one line, with the default (never a
/// failure) or its own rule:
///
/// ```
/// use dactor_persist::runtime::MessageReply;
///
/// struct Receipt { accepted: bool }
/// impl MessageReply for Receipt {
///     fn failure(&self) -> Option<String> {
///         (!self.accepted).then(|| "refused".to_owned())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a message's reply: it does not implement `MessageReply`",
    note = "for a type of your own, add `impl dactor_persist::runtime::MessageReply for {Self} {{}}` (a told message whose reply says it failed is reported as a dead letter; the default never says so); for a `Result<T, E>`, `E` must implement `Display`"
)]
pub trait MessageReply: Send + 'static {
    /// Why the message failed, when this answer says it did. Default: never.
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T: Send + 'static, E: std::fmt::Display + Send + 'static> MessageReply for Result<T, E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(ToString::to_string)
    }
}

macro_rules! never_fails {
    ($($ty:ty),* $(,)?) => { $(impl MessageReply for $ty {})* };
}

never_fails!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::time::Duration,
    std::time::SystemTime,
    crate::SequenceId,
    crate::PersistenceId,
);

impl<T: Send + 'static> MessageReply for Option<T> {}
impl<T: Send + 'static> MessageReply for Vec<T> {}
impl<T: Send + 'static> MessageReply for Box<T> {}
impl<T: Send + Sync + 'static> MessageReply for std::sync::Arc<T> {}
impl<K: Send + 'static, V: Send + 'static, S: Send + 'static> MessageReply
    for std::collections::HashMap<K, V, S>
{
}
impl<K: Send + 'static, V: Send + 'static> MessageReply for std::collections::BTreeMap<K, V> {}
impl<T: Send + 'static, S: Send + 'static> MessageReply for std::collections::HashSet<T, S> {}
impl<T: Send + 'static> MessageReply for std::collections::BTreeSet<T> {}

macro_rules! tuples {
    ($(($($t:ident),+)),* $(,)?) => {
        $(impl<$($t: Send + 'static),+> MessageReply for ($($t,)+) {})*
    };
}

tuples!(
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
);

/// Handles messages of type `M`: one `impl` per message type. Messages are
/// handled one at a time, in the order they were sent.
///
/// Persist, snapshot and save through the [`Context`]: it applies the actor's
/// failure policy and its automatic snapshot and save configuration.
#[async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no handler for the message `{M}`",
    note = "implement `Handler<{M}>` for `{Self}` (with `#[async_trait]`)"
)]
pub trait Handler<M: Message>: PersistentActor + Sized {
    /// Handles one message.
    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> M::Reply;
}
