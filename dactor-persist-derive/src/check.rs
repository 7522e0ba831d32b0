//! Rules that span several attributes or fields, one small function each.

use std::collections::HashMap;

use proc_macro2::Span;

use crate::ast::{Actor, Event};
use crate::attr::{Derive, Errors};

/// Every rule for an actor struct.
pub fn actor(actor: &Actor<'_>, errors: &mut Errors) {
    if actor.derive != Derive::StoredState {
        entity(actor, errors);
        event_type(actor, errors);
        one_id(actor, errors);
        sequence(actor, errors);
    }
    field_roles(actor, errors);
    stored_field_attrs(actor, errors);
    counts_above_zero(actor, errors);
}

/// Every rule for an event enum.
pub fn event(event: &Event<'_>, errors: &mut Errors) {
    unique_names(event, errors);
    defaults_trail(event, errors);
}

/// At most this many `#[persist(default)]` fields per struct: every subset of
/// them may be missing from an old payload, and each subset is a layout.
pub const MAX_DEFAULTED: usize = 8;

/// `default` and `name` only on stored fields; stored names unique; not too
/// many defaulted fields.
fn stored_field_attrs(actor: &Actor<'_>, errors: &mut Errors) {
    for f in actor.fields.iter().filter(|f| !f.is_stored()) {
        let spans = [
            f.attrs.default.as_ref().map(|d| ("default", d.span)),
            f.attrs.name.as_ref().map(|n| ("name", n.span)),
        ];
        for (key, span) in spans.into_iter().flatten() {
            errors.push(
                span,
                format!(
                    "`{key}` is for stored fields, and `{}` is not stored (it is the id, the sequence or skipped)",
                    f.ident
                ),
            );
        }
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for f in actor.stored_fields() {
        let name = f.stored_name();
        let span = f.attrs.name.as_ref().map_or(f.ident.span(), |n| n.span);
        if let Some(other) = seen.insert(name.clone(), f.ident.to_string()) {
            errors.push(
                span,
                format!("the stored name `{name}` is already the name of field `{other}`"),
            );
        }
    }
    if let Some(extra) = actor.defaulted_fields().nth(MAX_DEFAULTED) {
        errors.push(
            extra.attrs.default.as_ref().map_or(extra.ident.span(), |d| d.span),
            format!(
                "at most {MAX_DEFAULTED} fields of one struct can be `#[persist(default)]` (each may be missing from an old payload, and every combination is a layout to recognise): fold the older ones into a #[derive(StoredState)] layout and `migrate` from it"
            ),
        );
    }
}

/// In an event variant, `#[persist(default)]` fields come last: an old event
/// holds the fields before them, and its payload simply ends there.
fn defaults_trail(event: &Event<'_>, errors: &mut Errors) {
    for v in &event.variants {
        let mut first_default: Option<String> = None;
        for (i, (attrs, field)) in v.field_attrs.iter().zip(v.fields.iter()).enumerate() {
            let name = field
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), |i| i.to_string());
            match (&attrs.default, &first_default) {
                (Some(_), None) => first_default = Some(name),
                (None, Some(d)) => {
                    errors.push(
                        field.ident.as_ref().map_or(v.ident.span(), |i| i.span()),
                        format!(
                            "field `{name}` of `{}` has no `#[persist(default)]` but comes after `{d}`, which has one: an event's fields are stored by position, and an old event's payload ends where the added fields start, so added fields with defaults go last",
                            v.ident,
                        ),
                    );
                }
                _ => {}
            }
        }
    }
}

/// `entity` is required, not empty, and has no `:` (the id separator).
fn entity(actor: &Actor<'_>, errors: &mut Errors) {
    match &actor.attrs.entity {
        None if actor.attrs.written.iter().any(|k| k == "entity") => {}
        None => errors.push(
            actor.ident.span(),
            format!(
                "missing persist attribute `entity`: add #[persist(entity = \"{}\")] to name the journal of `{}`",
                actor.ident, actor.ident
            ),
        ),
        Some(e) if e.value.trim().is_empty() => {
            errors.push(e.span, "persist attribute `entity` must not be empty")
        }
        Some(e) if e.value.contains(':') => errors.push(
            e.span,
            "persist attribute `entity` must not contain `:`, which separates the entity from the id in a persistence id",
        ),
        Some(_) => {}
    }
}

/// An event-sourced actor names its event type.
fn event_type(actor: &Actor<'_>, errors: &mut Errors) {
    let written = actor.attrs.written.iter().any(|k| k == "event");
    if actor.derive == Derive::EventSourced && actor.attrs.event.is_none() && !written {
        errors.push(
            actor.ident.span(),
            "missing persist attribute `event`: add `event = YourEvent` (an enum with #[derive(PersistentEvent)])",
        );
    }
}

/// Exactly one id: one `#[persist(id)]` field, or `id = path` on the struct.
fn one_id(actor: &Actor<'_>, errors: &mut Errors) {
    let id_fields: Vec<Span> = actor.fields.iter().filter_map(|f| f.attrs.id).collect();
    for extra in id_fields.iter().skip(1) {
        errors.push(
            *extra,
            "a second `#[persist(id)]` field: an actor has exactly one id",
        );
    }
    match (&actor.attrs.id_fn, id_fields.first()) {
        (Some(_), Some(field)) => errors.push(
            *field,
            "the id is named twice: by `#[persist(id = ...)]` on the struct and by this `#[persist(id)]` field; keep one",
        ),
        (None, None) => errors.push(
            actor.ident.span(),
            format!(
                "`{}` has no persistence id: mark one field `#[persist(id)]`, or name a method with #[persist(id = Self::method)]",
                actor.ident
            ),
        ),
        _ => {}
    }
}

/// An event-sourced actor has exactly one sequence field; a durable one none.
fn sequence(actor: &Actor<'_>, errors: &mut Errors) {
    let seqs: Vec<Span> = actor
        .fields
        .iter()
        .filter_map(|f| f.attrs.sequence)
        .collect();
    match actor.derive {
        Derive::EventSourced => {
            if seqs.is_empty() {
                errors.push(
                    actor.ident.span(),
                    format!(
                        "`{}` has no sequence field: add `#[persist(sequence)] seq: SequenceId` to track the last persisted event",
                        actor.ident
                    ),
                );
            }
            for extra in seqs.iter().skip(1) {
                errors.push(
                    *extra,
                    "a second `#[persist(sequence)]` field: an actor has exactly one",
                );
            }
        }
        Derive::StoredState => {}
        Derive::DurableState => {
            for s in seqs {
                errors.push(
                    s,
                    "`#[persist(sequence)]` is for #[derive(EventSourced)]: a durable-state actor has no event sequence",
                );
            }
        }
    }
}

/// A field plays one role: id, sequence or skip.
fn field_roles(actor: &Actor<'_>, errors: &mut Errors) {
    for f in &actor.fields {
        let a = &f.attrs;
        let roles = [("id", a.id), ("sequence", a.sequence), ("skip", a.skip)];
        let set: Vec<(&str, Span)> = roles
            .iter()
            .filter_map(|(n, s)| s.map(|s| (*n, s)))
            .collect();
        if let [(first, _), (second, span), ..] = set.as_slice() {
            errors.push(
                *span,
                format!(
                    "field `{}` cannot be both `{first}` and `{second}`: the id and the sequence are never stored in the state, and a skipped field is neither",
                    f.ident
                ),
            );
        }
    }
}

/// Counts and retention must be at least 1.
fn counts_above_zero(actor: &Actor<'_>, errors: &mut Errors) {
    let a = &actor.attrs;
    if let Some(n) = a.snapshot_every.as_ref().filter(|n| n.value == 0) {
        errors.push(
            n.span,
            "`snapshot_every` must be at least 1 (leave it out to never snapshot by count)",
        );
    }
    if let Some(n) = a.save_every.as_ref().filter(|n| n.value == 0) {
        errors.push(
            n.span,
            "`save_every` must be at least 1 (leave it out to never save by count)",
        );
    }
    if let Some(n) = a.keep_snapshots.as_ref().filter(|n| n.value == 0) {
        errors.push(
            n.span,
            "`keep_snapshots` must be at least 1 (leave it out to keep every snapshot)",
        );
    }
    for d in [&a.snapshot_interval_ms, &a.save_interval_ms]
        .into_iter()
        .flatten()
    {
        if d.value == 0 {
            errors.push(d.span, "an interval must be longer than zero");
        }
    }
}

/// Names and aliases are not empty and are unique across the enum.
fn unique_names(event: &Event<'_>, errors: &mut Errors) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for v in &event.variants {
        let own = v.attrs.name.as_ref().map(|n| (n.value.clone(), n.span));
        let primary = own.unwrap_or_else(|| (v.ident.to_string(), v.ident.span()));
        let all = std::iter::once(primary)
            .chain(v.attrs.aliases.iter().map(|a| (a.value.clone(), a.span)));
        for (name, span) in all {
            if name.is_empty() {
                errors.push(span, "an event name must not be empty");
                continue;
            }
            if let Some(owner) = seen.get(&name) {
                errors.push(
                    span,
                    format!(
                        "event name `{name}` is already used by variant `{owner}`: stored events would be ambiguous"
                    ),
                );
            } else {
                seen.insert(name, v.ident.to_string());
            }
        }
    }
}
