//! Handles to hosted actors: `tell`, `ask`, `stop`.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use super::dead_letter::{self, DeadLetter, DeadLetterHook, DeadLetterReason};
use super::{Context, Handler, Message, MessageReply};
use crate::{PersistError, PersistenceId};

/// Where a hosted actor is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorStatus {
    /// Recovering its state; messages sent meanwhile wait in its mailbox.
    Recovering,
    /// Handling messages.
    Running,
    /// Stopping: handling what is left in its mailbox, saving.
    Stopping,
    /// Stopped, for the reason given; every `ask` is answered with
    /// [`PersistError::ActorStopped`].
    Stopped(String),
}

/// A reply held back until the save that covers it is done: called with
/// the save's error, if any, which then answers the `ask` instead.
pub(crate) type HeldReply = Box<dyn FnOnce(Option<&PersistError>) + Send>;

/// What delivering one message left to do.
pub(crate) enum Delivered {
    /// The sender is answered (or there was none to answer).
    Answered,
    /// The handler panicked, with this message; the sender is answered with
    /// an error.
    Panicked(String),
    /// The reply waits for the caller to release it.
    Held(HeldReply),
}

/// One message on its way to an actor, with the channel for its reply.
#[async_trait]
pub(crate) trait Envelope<A>: Send {
    /// Hands the message to its handler and answers the sender, or, with
    /// `hold`, returns the answer for the caller to send once what the
    /// message changed is saved. The sender is never left waiting: a panic
    /// or a failed write answers it with an error at once.
    async fn deliver(self: Box<Self>, actor: &mut A, ctx: &mut Context<A>, hold: bool)
    -> Delivered;

    /// The message's type, for dead letters.
    fn message_type(&self) -> &'static str;

    /// True for a `tell`: nobody waits for the answer.
    fn is_told(&self) -> bool;
}

struct Letter<M: Message> {
    msg: M,
    reply: Option<oneshot::Sender<Result<M::Reply, PersistError>>>,
}

#[async_trait]
impl<A, M> Envelope<A> for Letter<M>
where
    A: Handler<M>,
    M: Message,
{
    async fn deliver(
        self: Box<Self>,
        actor: &mut A,
        ctx: &mut Context<A>,
        hold: bool,
    ) -> Delivered {
        let Letter { msg, reply } = *self;
        let told = reply.is_none();
        let answer = match CatchUnwind(actor.handle(msg, ctx)).await {
            Ok(answer) => answer,
            Err(payload) => {
                let detail = panic_message(payload);
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(ctx.panicked_error(&detail)));
                    }
                    None => dead_letter::report(
                        ctx.dead_letters.as_ref(),
                        DeadLetter {
                            persistence_id: ctx.persistence_id().clone(),
                            message_type: std::any::type_name::<M>(),
                            reason: DeadLetterReason::Failed(format!(
                                "the handler panicked: {detail}"
                            )),
                        },
                    ),
                }
                return Delivered::Panicked(detail);
            }
        };
        let Some(reply) = reply else {
            if told && let Some(why) = answer.failure() {
                dead_letter::report(
                    ctx.dead_letters.as_ref(),
                    DeadLetter {
                        persistence_id: ctx.persistence_id().clone(),
                        message_type: std::any::type_name::<M>(),
                        reason: DeadLetterReason::Failed(why),
                    },
                );
            }
            return Delivered::Answered;
        };
        // A write that stopped the actor answers the ask with its error.
        if let Some(err) = ctx.failure() {
            let _ = reply.send(Err(err.clone()));
            return Delivered::Answered;
        }
        if hold {
            return Delivered::Held(Box::new(move |save_failed: Option<&PersistError>| {
                let _ = reply.send(match save_failed {
                    Some(err) => Err(err.clone()),
                    None => Ok(answer),
                });
            }));
        }
        let _ = reply.send(Ok(answer));
        Delivered::Answered
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn is_told(&self) -> bool {
        self.reply.is_none()
    }
}

/// Polls a handler's (boxed) future, turning a panic into an `Err` with the
/// panic's payload, so that the actor's task can answer and decide.
struct CatchUnwind<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, Box<dyn std::any::Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// What travels through a mailbox.
pub(crate) enum Mail<A> {
    Letter(Box<dyn Envelope<A>>),
    /// A look at the state between messages (the test kit's): not a
    /// message, so it counts toward no save and persists nothing.
    Inspect(Box<dyn FnOnce(&A) + Send>),
    Stop,
}

/// State shared by every handle to one actor.
pub(crate) struct Shared {
    pub(crate) pid: PersistenceId,
    pub(crate) status: watch::Receiver<ActorStatus>,
    pub(crate) dead_letters: Option<DeadLetterHook>,
}

/// A cloneable handle to a hosted actor.
///
/// Dropping every handle stops the actor gracefully.
pub struct ActorRef<A> {
    pub(crate) tx: mpsc::Sender<Mail<A>>,
    pub(crate) shared: Arc<Shared>,
}

impl<A> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<A> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("persistence_id", &self.shared.pid)
            .field("status", &*self.shared.status.borrow())
            .finish()
    }
}

impl<A: Send + 'static> ActorRef<A> {
    /// The actor's persistence id.
    pub fn persistence_id(&self) -> &PersistenceId {
        &self.shared.pid
    }

    /// Where the actor is in its life now.
    pub fn status(&self) -> ActorStatus {
        self.shared.status.borrow().clone()
    }

    /// Sends a message without waiting for it to be handled. Waits while the
    /// mailbox is full (backpressure).
    ///
    /// # Errors
    ///
    /// [`PersistError::ActorStopped`] when the actor is stopped or stopping.
    pub async fn tell<M>(&self, msg: M) -> Result<(), PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let letter = Box::new(Letter { msg, reply: None });
        match self.tx.send(Mail::Letter(letter)).await {
            Ok(()) => Ok(()),
            Err(_) => {
                let err = self.stopped_error().await;
                self.not_delivered::<M>(&err);
                Err(err)
            }
        }
    }

    /// Sends a message if the mailbox has room, without waiting.
    ///
    /// # Errors
    ///
    /// [`PersistError::ActorStopped`] when the actor is stopped, and
    /// [`PersistError::MailboxFull`] when its mailbox is full.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let letter = Box::new(Letter { msg, reply: None });
        match self.tx.try_send(Mail::Letter(letter)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(PersistError::MailboxFull(self.shared.pid.clone()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let err = self.stopped_now();
                self.not_delivered::<M>(&err);
                Err(err)
            }
        }
    }

    /// Reports a told message a stopped actor will never handle.
    fn not_delivered<M>(&self, err: &PersistError) {
        let why = match err {
            PersistError::ActorStopped { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        dead_letter::report(
            self.shared.dead_letters.as_ref(),
            DeadLetter {
                persistence_id: self.shared.pid.clone(),
                message_type: std::any::type_name::<M>(),
                reason: DeadLetterReason::NotDelivered(why),
            },
        );
    }

    /// Sends a message and waits for the handler's reply.
    ///
    /// # Errors
    ///
    /// [`PersistError::ActorStopped`] when the actor is stopped, or stops
    /// before answering; the write's error when a persist inside the handler
    /// failed and stopped the actor (policy `Stop`, or `Retry` run out, or a
    /// sequence conflict).
    pub async fn ask<M>(&self, msg: M) -> Result<M::Reply, PersistError>
    where
        A: Handler<M>,
        M: Message,
    {
        let (reply, answer) = oneshot::channel();
        let letter = Box::new(Letter {
            msg,
            reply: Some(reply),
        });
        if self.tx.send(Mail::Letter(letter)).await.is_err() {
            return Err(self.stopped_error().await);
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) => Err(self.stopped_error().await),
        }
    }

    /// The mail of a `tell`.
    pub(crate) fn told<M>(msg: M) -> Mail<A>
    where
        A: Handler<M>,
        M: Message,
    {
        Mail::Letter(Box::new(Letter { msg, reply: None }))
    }

    /// The mail of an `ask`, and where its answer arrives.
    pub(crate) fn asked<M>(msg: M) -> (Mail<A>, oneshot::Receiver<Result<M::Reply, PersistError>>)
    where
        A: Handler<M>,
        M: Message,
    {
        let (reply, answer) = oneshot::channel();
        let letter = Box::new(Letter {
            msg,
            reply: Some(reply),
        });
        (Mail::Letter(letter), answer)
    }

    /// Puts `mail` in the mailbox (waiting for room), or hands it back when
    /// the mailbox is closed (the actor is stopping or stopped).
    pub(crate) async fn send_mail(&self, mail: Mail<A>) -> Result<(), Mail<A>> {
        self.tx.send(mail).await.map_err(|e| e.0)
    }

    /// The answer to an `ask` sent with [`send_mail`](Self::send_mail).
    pub(crate) async fn answer<R>(
        &self,
        answer: oneshot::Receiver<Result<R, PersistError>>,
    ) -> Result<R, PersistError> {
        match answer.await {
            Ok(answer) => answer,
            Err(_) => Err(self.stopped_error().await),
        }
    }

    /// Asks the actor to stop gracefully, without waiting (outside tokio,
    /// only if its mailbox has room now).
    pub(crate) fn request_stop(&self) {
        let tx = self.tx.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(tokio) => {
                tokio.spawn(async move {
                    let _ = tx.send(Mail::Stop).await;
                });
            }
            Err(_) => {
                let _ = tx.try_send(Mail::Stop);
            }
        }
    }

    /// True when both handles reach the same incarnation.
    pub(crate) fn same_actor(&self, other: &ActorRef<A>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Runs `f` on the actor's state between two messages and returns what
    /// it answers. Not a message: it counts toward no save.
    ///
    /// # Errors
    ///
    /// [`PersistError::ActorStopped`] when the actor is stopped, or stops
    /// before `f` runs.
    #[cfg_attr(not(feature = "testkit"), allow(dead_code))]
    pub(crate) async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&A) -> R + Send + 'static,
    ) -> Result<R, PersistError> {
        let (reply, answer) = oneshot::channel();
        let look = Box::new(move |actor: &A| {
            let _ = reply.send(f(actor));
        });
        if self.tx.send(Mail::Inspect(look)).await.is_err() {
            return Err(self.stopped_error().await);
        }
        match answer.await {
            Ok(answer) => Ok(answer),
            Err(_) if matches!(*self.shared.status.borrow(), ActorStatus::Running) => {
                Err(PersistError::InvalidInput {
                    persistence_id: self.shared.pid.clone(),
                    detail: "the function looking at the actor's state panicked".into(),
                })
            }
            Err(_) => Err(self.stopped_error().await),
        }
    }

    /// Stops the actor gracefully and waits until it has stopped: the
    /// messages already in its mailbox are handled, in-flight writes finish,
    /// a durable-state actor saves its state.
    pub async fn stop(&self) {
        // A closed mailbox means the actor is already stopping.
        let _ = self.tx.send(Mail::Stop).await;
        self.stopped().await;
    }

    /// Waits until the actor has stopped and returns why.
    pub async fn stopped(&self) -> String {
        let mut status = self.shared.status.clone();
        loop {
            if let ActorStatus::Stopped(reason) = &*status.borrow_and_update() {
                return reason.clone();
            }
            if status.changed().await.is_err() {
                // The runtime's side is gone: the last status is final.
                return match &*status.borrow() {
                    ActorStatus::Stopped(reason) => reason.clone(),
                    _ => "the actor's task ended".to_owned(),
                };
            }
        }
    }

    /// Waits until recovery is over: `Ok` once the actor is running.
    ///
    /// # Errors
    ///
    /// [`PersistError::ActorStopped`] when recovery failed (the reason names
    /// the error) or the actor stopped.
    pub async fn ready(&self) -> Result<(), PersistError> {
        let mut status = self.shared.status.clone();
        loop {
            match &*status.borrow_and_update() {
                ActorStatus::Running => return Ok(()),
                ActorStatus::Stopping | ActorStatus::Stopped(_) => break,
                ActorStatus::Recovering => {}
            }
            if status.changed().await.is_err() {
                break;
            }
        }
        Err(self.stopped_error().await)
    }

    fn stopped_now(&self) -> PersistError {
        let reason = match &*self.shared.status.borrow() {
            ActorStatus::Stopped(reason) => reason.clone(),
            _ => "stopping".to_owned(),
        };
        PersistError::ActorStopped {
            persistence_id: self.shared.pid.clone(),
            reason,
        }
    }

    /// The error for a message the actor will never answer, once the actor
    /// has stopped and its reason is known.
    async fn stopped_error(&self) -> PersistError {
        PersistError::ActorStopped {
            persistence_id: self.shared.pid.clone(),
            reason: self.stopped().await,
        }
    }
}
