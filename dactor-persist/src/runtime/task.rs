//! The task of one hosted actor: recovery, then its mailbox, timers and stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};
use tracing::Instrument as _;

use super::Context;
use super::actor_ref::{ActorStatus, Delivered, HeldReply, Mail};
use super::context::StopRequest;
use super::dead_letter::{self, DeadLetter, DeadLetterReason};
use crate::{
    Backoff, DurableState, EventSourced, PersistError, recover_durable_state, recover_event_sourced,
};

/// Makes a fresh actor for a restart.
pub(crate) type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// Everything one actor's task owns.
pub(crate) struct Hosted<A> {
    pub(crate) actor: A,
    pub(crate) ctx: Context<A>,
    pub(crate) rx: mpsc::Receiver<Mail<A>>,
    pub(crate) status: Arc<watch::Sender<ActorStatus>>,
    /// Present for a supervised actor: how to make a fresh one, the delays
    /// of its restarts, and how many are left.
    pub(crate) restart: Option<(Factory<A>, Backoff, u32)>,
}

/// What the loop does after one mail.
enum Next {
    Continue,
    /// Failed: refuse what is left and stop with this reason.
    Fail(String),
    /// The handler panicked with this message.
    Panicked(String),
}

impl<A: Send + 'static> Hosted<A> {
    /// Stops taking mail, and drops what is left unhandled: every waiting
    /// `ask` is then answered with `ActorStopped` and `reason`.
    async fn refuse_all(mut self, reason: String) -> String {
        self.status.send_replace(ActorStatus::Stopping);
        self.rx.close();
        while let Some(mail) = self.rx.recv().await {
            // An `ask` hears of it through its dropped reply; a `tell` is a
            // dead letter.
            if let Mail::Letter(letter) = mail
                && letter.is_told()
            {
                dead_letter::report(
                    self.ctx.dead_letters.as_ref(),
                    DeadLetter {
                        persistence_id: self.ctx.persistence_id().clone(),
                        message_type: letter.message_type(),
                        reason: DeadLetterReason::NotDelivered(reason.clone()),
                    },
                );
            }
        }
        reason
    }

    /// Begins a graceful stop: no new mail; what is queued is still handled.
    fn begin_stop(&mut self) {
        self.status.send_replace(ActorStatus::Stopping);
        self.rx.close();
    }

    /// Delivers one mail and applies what the handler's context asks for.
    /// With `hold`, a letter's reply comes back for the caller to send.
    async fn handle(&mut self, mail: Mail<A>, hold: bool) -> (Next, Option<HeldReply>) {
        match mail {
            Mail::Letter(letter) => {
                let delivered = letter.deliver(&mut self.actor, &mut self.ctx, hold).await;
                self.ctx.clear_metadata();
                let held = match delivered {
                    Delivered::Panicked(detail) => return (Next::Panicked(detail), None),
                    Delivered::Answered => None,
                    Delivered::Held(reply) => Some(reply),
                };
                let next = match self.ctx.stop.take() {
                    None => Next::Continue,
                    Some(StopRequest::Graceful) => {
                        self.begin_stop();
                        Next::Continue
                    }
                    Some(StopRequest::Failed(err)) => Next::Fail(format!("a write failed: {err}")),
                };
                (next, held)
            }
            Mail::Inspect(look) => {
                // A panic in the look drops its answer: the caller hears of
                // it, and the actor carries on.
                let actor = &self.actor;
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| look(actor)));
                (Next::Continue, None)
            }
            Mail::Stop => {
                self.begin_stop();
                (Next::Continue, None)
            }
        }
    }

    /// After a panic: a fresh actor from the factory, if restarts are left,
    /// after the next delay. `Err` carries the reason to stop instead.
    async fn fresh_actor(&mut self, detail: &str) -> Result<(), String> {
        let stop = format!("a handler panicked: {detail}");
        let Some((factory, backoff, left)) = self.restart.as_mut() else {
            return Err(stop);
        };
        let Some(delay) = backoff.next_delay().filter(|_| *left > 0) else {
            tracing::error!(panic = %detail, "a handler panicked; no restarts left; stopping");
            return Err(format!("{stop} (no restarts left)"));
        };
        *left -= 1;
        // The next panic, with no restart left, stops the actor: its `ask`
        // is answered as such.
        self.ctx.supervised = *left > 0;
        tracing::warn!(panic = %detail, delay_ms = delay.as_millis() as u64, "a handler panicked; restarting with recovery from storage");
        self.status.send_replace(ActorStatus::Recovering);
        tokio::time::sleep(delay).await;
        self.actor = factory();
        self.ctx.reset();
        Ok(())
    }
}

/// An interval timer, or none.
fn ticker(period: Option<Duration>) -> Option<Interval> {
    period.filter(|p| !p.is_zero()).map(|p| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    })
}

async fn tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Hosts an event-sourced actor until it stops; returns why it stopped.
pub(crate) async fn run_event_sourced<A: EventSourced>(mut h: Hosted<A>) -> String {
    let span = tracing::info_span!("actor", persistence_id = %h.ctx.persistence_id(), kind = "event_sourced");
    async move {
        let Some((journal, snapshots)) = h.ctx.event_stores() else {
            return h.refuse_all("no journal configured".into()).await;
        };
        'incarnation: loop {
            if let Err(e) = recover_event_sourced(&mut h.actor, &*journal, &*snapshots).await {
                return h.refuse_all(format!("recovery failed: {e}")).await;
            }
            h.ctx.configure(&h.actor);
            h.ctx.snapshots.config = h.actor.snapshot_config();
            let mut timer = ticker(h.ctx.snapshots.config.as_ref().and_then(|c| c.interval));
            h.status.send_replace(ActorStatus::Running);
            loop {
                let mail = tokio::select! {
                    mail = h.rx.recv() => mail,
                    () = tick(&mut timer) => {
                        if h.ctx.snapshots.events_since > 0 {
                            h.ctx.auto_snapshot(&mut h.actor).await;
                        }
                        continue;
                    }
                };
                let Some(mail) = mail else { break 'incarnation };
                // Events are durable before their handler returns: no reply
                // is held.
                match h.handle(mail, false).await.0 {
                    Next::Continue => {}
                    Next::Fail(reason) => return h.refuse_all(reason).await,
                    Next::Panicked(detail) => match h.fresh_actor(&detail).await {
                        Ok(()) => continue 'incarnation,
                        Err(reason) => return h.refuse_all(reason).await,
                    },
                }
            }
        }
        tracing::info!("stopped");
        "stopped".to_owned()
    }
    .instrument(span)
    .await
}

/// Hosts a durable-state actor until it stops; returns why it stopped.
pub(crate) async fn run_durable_state<A: DurableState>(mut h: Hosted<A>) -> String {
    let span = tracing::info_span!("actor", persistence_id = %h.ctx.persistence_id(), kind = "durable_state");
    async move {
        let Some(state) = h.ctx.state_store() else {
            return h.refuse_all("no state store configured".into()).await;
        };
        'incarnation: loop {
            if let Err(e) = recover_durable_state(&mut h.actor, &*state).await {
                return h.refuse_all(format!("recovery failed: {e}")).await;
            }
            h.ctx.configure(&h.actor);
            h.ctx.saves.config = h.actor.save_config();
            // What recovery left is what is stored (or the initial state):
            // saving it unchanged would write nothing new.
            h.ctx.saves.last_saved = h.actor.serialize_state().ok();
            let every = h.ctx.saves.config.as_ref().and_then(|c| c.every_n_messages);
            let mut timer = ticker(h.ctx.saves.config.as_ref().and_then(|c| c.interval));
            h.status.send_replace(ActorStatus::Running);
            loop {
                let mail = tokio::select! {
                    mail = h.rx.recv() => mail,
                    () = tick(&mut timer) => {
                        if h.ctx.saves.messages_since > 0
                            && let (_, Some(reason)) = auto_save(&mut h).await
                        {
                            return h.refuse_all(reason).await;
                        }
                        continue;
                    }
                };
                let Some(mail) = mail else { break 'incarnation };
                let is_letter = matches!(mail, Mail::Letter(_));
                if is_letter {
                    // Counted before the handler runs, so that a save inside the
                    // handler leaves nothing unsaved.
                    h.ctx.saves.messages_since += 1;
                }
                // The reply waits for the save the message's count makes due,
                // so that it never reflects a state a crash could lose.
                let (next, held) = h.handle(mail, is_letter).await;
                match next {
                    Next::Continue => {}
                    Next::Fail(reason) => return h.refuse_all(reason).await,
                    Next::Panicked(detail) => match h.fresh_actor(&detail).await {
                        // What was not saved is gone with the panicked state.
                        Ok(()) => continue 'incarnation,
                        Err(reason) => return h.refuse_all(reason).await,
                    },
                }
                let due =
                    is_letter && every.is_some_and(|n| h.ctx.saves.messages_since >= n.max(1));
                let (failed, stop) = if due {
                    auto_save(&mut h).await
                } else {
                    (None, None)
                };
                if let Some(reply) = held {
                    reply(failed.as_ref());
                }
                if let Some(reason) = stop {
                    return h.refuse_all(reason).await;
                }
            }
        }
        if h.ctx.saves.messages_since > 0
            && let Err(e) = h.ctx.save(&mut h.actor).await
        {
            tracing::error!(error = %e, "the final save failed");
            return format!("stopped, but the final save failed: {e}");
        }
        tracing::info!("stopped");
        "stopped".to_owned()
    }
    .instrument(span)
    .await
}

/// A save the runtime decided on: the save's error, if it failed, and the
/// reason to stop the actor, when it must.
async fn auto_save<A: DurableState>(h: &mut Hosted<A>) -> (Option<PersistError>, Option<String>) {
    match h.ctx.save(&mut h.actor).await {
        Ok(()) => (None, None),
        Err(e) => match h.ctx.stop.take() {
            Some(StopRequest::Failed(err)) => {
                let reason = format!("a save failed: {err}");
                (Some(e), Some(reason))
            }
            other => {
                h.ctx.stop = other;
                tracing::warn!(error = %e, "automatic save failed; will try again");
                (Some(e), None)
            }
        },
    }
}
