//! The actor traits: [`Actor`] and [`PersistentActor`].

use crate::{PersistFailurePolicy, PersistenceId, RecoveryFailurePolicy};

/// The core actor trait of dactor 0.2.0, as far as persistence needs it.
///
/// # Examples
///
/// ```
/// use dactor_persist::actor::Actor;
///
/// struct Counter { value: i64 }
///
/// impl Actor for Counter {
///     type Args = ();
///     type Deps = ();
///     fn create(_args: (), _deps: ()) -> Self { Counter { value: 0 } }
/// }
/// ```
pub trait Actor: Send + 'static {
    /// Serializable construction arguments.
    type Args: Send + 'static;

    /// Local, non-serializable dependencies resolved where the actor runs.
    type Deps: Send + 'static;

    /// Constructs the actor from its arguments and dependencies.
    fn create(args: Self::Args, deps: Self::Deps) -> Self
    where
        Self: Sized;
}

/// An actor whose state is persisted: its identity and recovery hooks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a persistent actor",
    note = "add `#[derive(EventSourced)]` or `#[derive(DurableState)]` with `#[persist(entity = \"...\")]`, or implement `PersistentActor` by hand"
)]
pub trait PersistentActor: Actor {
    /// The id of this actor's journal, snapshots or state.
    fn persistence_id(&self) -> PersistenceId;

    /// Called before recovery starts (before every try). Default: nothing.
    fn pre_recovery(&mut self) {}

    /// Called after recovery succeeded, or was skipped by
    /// [`RecoveryFailurePolicy::SkipAndStart`]. Default: nothing.
    fn post_recovery(&mut self) {}

    /// What to do when recovery fails. Default: [`RecoveryFailurePolicy::Stop`].
    fn recovery_failure_policy(&self) -> RecoveryFailurePolicy {
        RecoveryFailurePolicy::Stop
    }

    /// What to do when persisting fails. Default: [`PersistFailurePolicy::Stop`].
    fn persist_failure_policy(&self) -> PersistFailurePolicy {
        PersistFailurePolicy::Stop
    }
}
