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
    type Reply: Send + 'static;
}

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
