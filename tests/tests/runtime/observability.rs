//! Point 7: tracing spans and events for recovery, persist, snapshot, save
//! and failures, each with the persistence id.

use std::sync::{Arc, Mutex};

use dactor_persist::prelude::*;
use dactor_persist::testkit::Op;
use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use super::actors::*;

/// One event as seen by the subscriber: its message, its own fields, and the
/// fields of every span it happened in.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    pub(super) message: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        ));
    }
}

/// Records every event with the fields of its spans.
#[derive(Clone, Default)]
pub(super) struct Recorder(pub(super) Arc<Mutex<Vec<Seen>>>);

impl<S> Layer<S> for Recorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let mut own = Fields::default();
        event.record(&mut own);
        let mut seen = Seen::default();
        for (k, v) in own.0 {
            if k == "message" {
                seen.message = v;
            } else {
                seen.fields.push((k, v));
            }
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(f) = span.extensions().get::<Fields>() {
                    seen.fields.extend(f.0.iter().cloned());
                }
            }
        }
        self.0.lock().unwrap().push(seen);
    }
}

pub(super) fn record() -> (Recorder, DefaultGuard) {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    (
        recorder.clone(),
        tracing::subscriber::set_default(subscriber),
    )
}

pub(super) fn find<'a>(seen: &'a [Seen], message: &str, id: &str) -> Option<&'a Seen> {
    seen.iter()
        .find(|s| s.message.contains(message) && s.field("persistence_id") == Some(id))
}

#[tokio::test]
async fn recovery_persist_snapshot_save_and_failures_are_traced_with_the_id() {
    let (recorder, _guard) = record();
    let (store, runtime) = failing_runtime();
    store
        .inner()
        .write_event(&pid("o"), SequenceId(1), "Added", &5i64.to_le_bytes())
        .await
        .unwrap();
    let mut c = Counter::new("o");
    c.snapshots = Some(SnapshotConfig {
        every_n_events: Some(2),
        ..Default::default()
    });
    let counter = runtime.spawn_event_sourced(c).await.unwrap();
    counter.ask(Add(1)).await.unwrap().unwrap();
    let settings = runtime
        .spawn_durable_state(Settings::create("p".into(), ()))
        .await
        .unwrap();
    settings.ask(Set("a", "b")).await.unwrap();
    settings.ask(SaveNow).await.unwrap().unwrap();
    store.only(Op::WRITES).fail_next(1);
    let _ = counter.ask(Add(1)).await;
    runtime.shutdown().await;

    let seen = recorder.0.lock().unwrap().clone();
    let recovered = find(&seen, "recovered", "Counter:o").expect("a recovery event");
    assert_eq!(recovered.field("events_replayed"), Some("1"));
    assert!(recovered.field("duration_us").is_some());
    assert!(find(&seen, "persisted", "Counter:o").is_some(), "{seen:#?}");
    let snapshot = find(&seen, "snapshot saved", "Counter:o").expect("a snapshot event");
    assert_eq!(snapshot.field("sequence"), Some("2"));
    assert!(find(&seen, "state saved", "Settings:p").is_some());
    let failure = find(&seen, "write failed", "Counter:o").expect("a failure event");
    assert!(
        failure
            .field("error")
            .is_some_and(|e| e.contains("injected failure"))
    );
    assert!(find(&seen, "recovered", "Settings:p").is_some());
}
