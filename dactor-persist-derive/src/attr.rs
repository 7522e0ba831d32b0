//! `#[persist(..)]` attributes parsed into typed values.
//!
//! Parsing never stops at the first mistake: every error is pushed to the
//! [`Errors`] accumulator with its span, and parsing carries on with the next
//! key, so one build reports every mistake.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::Parse;
use syn::spanned::Spanned as _;
use syn::{Attribute, ExprPath, LitBool, LitInt, LitStr, Path, Type};

/// Every error of one derive, reported together.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    /// Records an error at `span`.
    pub fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, msg));
    }

    /// Records an error that syn built.
    pub fn push_err(&mut self, err: syn::Error) {
        self.0.push(err);
    }

    /// All errors combined into one, or `None` when there are none.
    pub fn combined(self) -> Option<syn::Error> {
        self.0.into_iter().reduce(|mut all, e| {
            all.combine(e);
            all
        })
    }
}

/// Which derive is reading the attributes: each accepts its own keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    EventSourced,
    DurableState,
    StoredState,
}

impl Derive {
    pub fn name(self) -> &'static str {
        match self {
            Derive::EventSourced => "EventSourced",
            Derive::DurableState => "DurableState",
            Derive::StoredState => "StoredState",
        }
    }

    /// The container keys this derive accepts, for "expected one of" messages.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Derive::EventSourced => &[
                "entity",
                "event",
                "apply",
                "id",
                "snapshot_every",
                "snapshot_interval",
                "keep_snapshots",
                "delete_events_on_snapshot",
                "schema_version",
                "migrate",
                "format",
                "recovery_failure",
                "persist_failure",
                "manual_actor",
                "crate",
            ],
            Derive::StoredState => &["schema_version", "migrate", "format", "crate"],
            Derive::DurableState => &[
                "entity",
                "id",
                "save_every",
                "save_interval",
                "schema_version",
                "migrate",
                "format",
                "recovery_failure",
                "persist_failure",
                "manual_actor",
                "crate",
            ],
        }
    }
}

/// A value and where it was written.
pub struct At<T> {
    pub value: T,
    pub span: Span,
}

/// A failure policy named by attribute.
pub enum Policy {
    Stop,
    SkipAndStart,
    ReturnError,
    Retry {
        max_attempts: Option<u32>,
        initial_delay_ms: u64,
    },
}

/// `migrate(from = OldLayout, with = path)`: read payloads of an older
/// layout and turn them into this one.
pub struct Migrate {
    pub from: Type,
    pub with: ExprPath,
}

/// A field's default when a stored payload predates it.
pub enum DefaultValue {
    /// `#[persist(default)]`: `Default::default()`.
    Trait,
    /// `#[persist(default = path)]`: `path()`.
    Path(ExprPath),
}

/// Where a field attribute was written: each place accepts its own keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldPlace {
    /// A field of an `EventSourced` or `DurableState` struct.
    Actor,
    /// A field of a `StoredState` struct.
    Layout,
    /// A field of a `PersistentEvent` variant.
    Variant,
}

impl FieldPlace {
    fn keys(self) -> &'static [&'static str] {
        match self {
            FieldPlace::Actor => &["id", "sequence", "skip", "default", "name"],
            FieldPlace::Layout => &["default", "name"],
            FieldPlace::Variant => &["default"],
        }
    }

    fn hint(self, key: &str) -> &'static str {
        match (self, key) {
            (FieldPlace::Layout, "id" | "sequence" | "skip") => {
                " (a #[derive(StoredState)] struct lists only the stored fields of the old layout: leave the id, the sequence and skipped fields out)"
            }
            (FieldPlace::Variant, "name") => {
                " (an event's fields are stored by position, not by name: renaming one needs nothing; `name` goes on the variant)"
            }
            (FieldPlace::Variant, "id" | "sequence" | "skip") => {
                " (these mark fields of the actor struct, not of an event)"
            }
            (_, "alias" | "tag") => " (this is a variant attribute: put it on the variant)",
            (_, "entity" | "event" | "schema_version" | "migrate") => {
                " (this is a struct attribute: put it on the struct)"
            }
            _ => "",
        }
    }
}

/// The struct-level `#[persist(..)]` of `EventSourced` and `DurableState`.
#[derive(Default)]
pub struct Container {
    pub krate: Option<Path>,
    pub entity: Option<At<String>>,
    pub event: Option<Type>,
    pub apply: Option<ExprPath>,
    pub id_fn: Option<ExprPath>,
    pub snapshot_every: Option<At<u64>>,
    pub snapshot_interval_ms: Option<At<u64>>,
    pub keep_snapshots: Option<At<u32>>,
    pub delete_events_on_snapshot: Option<At<bool>>,
    pub save_every: Option<At<u64>>,
    pub save_interval_ms: Option<At<u64>>,
    pub schema_version: Option<At<u32>>,
    pub migrate: Option<At<Migrate>>,
    /// `format = "json"`: snapshots or states as JSON.
    pub json: Option<At<bool>>,
    pub recovery_failure: Option<At<Policy>>,
    pub persist_failure: Option<At<Policy>>,
    pub manual_actor: Option<At<bool>>,
    /// Keys that were written, valid or not: a key with a bad value is not
    /// also reported as missing.
    pub written: Vec<String>,
}

/// The field-level `#[persist(..)]`.
#[derive(Default)]
pub struct FieldAttrs {
    pub id: Option<Span>,
    pub sequence: Option<Span>,
    pub skip: Option<Span>,
    pub default: Option<At<DefaultValue>>,
    /// The name the stored layout records (an earlier name of the field).
    pub name: Option<At<String>>,
}

/// The variant-level `#[persist(..)]` of `PersistentEvent`.
#[derive(Default)]
pub struct VariantAttrs {
    pub name: Option<At<String>>,
    pub aliases: Vec<At<String>>,
    pub tags: Vec<At<String>>,
}

/// The enum-level `#[persist(..)]` of `PersistentEvent`.
#[derive(Default)]
pub struct EventContainer {
    pub krate: Option<Path>,
    /// A function from the event to its tags.
    pub tags: Option<ExprPath>,
    /// `upcast(from = OldEvents, with = path)`: names this enum does not
    /// know decode through `OldEvents`, then `path` turns them into this one.
    pub upcast: Option<At<Migrate>>,
    /// `format = "json"`: events as JSON.
    pub json: Option<At<bool>>,
}

fn persist_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("persist"))
}

fn key_name(meta: &ParseNestedMeta<'_>) -> String {
    let path = &meta.path;
    path.get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""))
}

fn expected_list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stores `value` in `slot`, or reports a duplicate key.
fn set_once<T>(errors: &mut Errors, slot: &mut Option<T>, value: T, key: &str, span: Span) {
    if slot.is_some() {
        errors.push(span, format!("duplicate persist attribute `{key}`"));
    } else {
        *slot = Some(value);
    }
}

pub fn parse_container(attrs: &[Attribute], derive: Derive, errors: &mut Errors) -> Container {
    let mut c = Container::default();
    for attr in persist_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta);
            let span = meta.path.span();
            if !derive.keys().contains(&key.as_str()) {
                let why = misplaced_key_hint(derive, &key);
                let why = if why.is_empty() { did_you_mean(&key, derive.keys()) } else { why.to_owned() };
                errors.push(
                    span,
                    format!(
                        "unknown persist attribute `{key}` for #[derive({})]{why}; expected one of {}",
                        derive.name(),
                        expected_list(derive.keys())
                    ),
                );
                skip_value(&meta);
                return Ok(());
            }
            c.written.push(key.clone());
            match key.as_str() {
                "crate" => {
                    if let Some(v) = parse_or_report(errors, &key, || {
                        meta.value()?.parse::<LitStr>()?.parse::<Path>()
                    }) {
                        set_once(errors, &mut c.krate, v, &key, span);
                    }
                }
                "entity" => {
                    if let Some(lit) = string_value(&meta, &key, errors) {
                        let v = At { value: lit.value(), span: lit.span() };
                        set_once(errors, &mut c.entity, v, &key, span);
                    }
                }
                "event" => {
                    if let Some(v) = parse_or_report(errors, &key, || meta.value()?.parse::<Type>())
                    {
                        set_once(errors, &mut c.event, v, &key, span);
                    }
                }
                "apply" => {
                    if let Some(v) =
                        path_value(&meta, &key, errors)
                    {
                        set_once(errors, &mut c.apply, v, &key, span);
                    }
                }
                "id" => {
                    if let Some(v) =
                        path_value(&meta, &key, errors)
                    {
                        set_once(errors, &mut c.id_fn, v, &key, span);
                    }
                }
                "snapshot_every" => {
                    if let Some(v) = int_value::<u64>(&meta, &key, errors) {
                        set_once(errors, &mut c.snapshot_every, v, &key, span);
                    }
                }
                "save_every" => {
                    if let Some(v) = int_value::<u64>(&meta, &key, errors) {
                        set_once(errors, &mut c.save_every, v, &key, span);
                    }
                }
                "keep_snapshots" => {
                    if let Some(v) = int_value::<u32>(&meta, &key, errors) {
                        set_once(errors, &mut c.keep_snapshots, v, &key, span);
                    }
                }
                "schema_version" => {
                    if let Some(v) = int_value::<u32>(&meta, &key, errors) {
                        set_once(errors, &mut c.schema_version, v, &key, span);
                    }
                }
                "snapshot_interval" => {
                    if let Some(v) = duration_value(&meta, &key, errors) {
                        set_once(errors, &mut c.snapshot_interval_ms, v, &key, span);
                    }
                }
                "save_interval" => {
                    if let Some(v) = duration_value(&meta, &key, errors) {
                        set_once(errors, &mut c.save_interval_ms, v, &key, span);
                    }
                }
                "delete_events_on_snapshot" => {
                    if let Some(v) = flag_value(&meta, &key, errors) {
                        set_once(errors, &mut c.delete_events_on_snapshot, v, &key, span);
                    }
                }
                "manual_actor" => {
                    if let Some(v) = flag_value(&meta, &key, errors) {
                        set_once(errors, &mut c.manual_actor, v, &key, span);
                    }
                }
                "recovery_failure" => {
                    if let Some(v) = policy_value(&meta, &key, PolicyKind::Recovery, errors) {
                        set_once(errors, &mut c.recovery_failure, v, &key, span);
                    }
                }
                "persist_failure" => {
                    if let Some(v) = policy_value(&meta, &key, PolicyKind::Persist, errors) {
                        set_once(errors, &mut c.persist_failure, v, &key, span);
                    }
                }
                "migrate" => {
                    if let Some(v) = migrate_value(&meta, MigrateKind::Migrate, errors) {
                        set_once(errors, &mut c.migrate, v, &key, span);
                    }
                }
                "format" => {
                    if let Some(v) = format_value(&meta, errors) {
                        set_once(errors, &mut c.json, v, &key, span);
                    }
                }
                _ => errors.push(span, format!("unhandled persist attribute `{key}`")),
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push_err(e);
        }
    }
    c
}

/// ` (did you mean `x`?)` for a key close to a known one.
fn did_you_mean(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A hint for keys that belong to another derive or to fields.
fn misplaced_key_hint(derive: Derive, key: &str) -> &'static str {
    match (derive, key) {
        (Derive::DurableState, "event" | "apply") => {
            " (a durable-state actor stores its whole state, not events: use #[derive(EventSourced)] for events)"
        }
        (
            Derive::DurableState,
            "snapshot_every" | "snapshot_interval" | "keep_snapshots" | "delete_events_on_snapshot",
        ) => {
            " (snapshots are for #[derive(EventSourced)]; a durable state is saved whole: use `save_every` or `save_interval`)"
        }
        (Derive::EventSourced, "save_every" | "save_interval") => {
            " (saving is for #[derive(DurableState)]; an event-sourced actor snapshots: use `snapshot_every` or `snapshot_interval`)"
        }
        (Derive::StoredState, _)
            if Derive::EventSourced.keys().contains(&key)
                || Derive::DurableState.keys().contains(&key) =>
        {
            " (a #[derive(StoredState)] struct describes an old stored layout; the actor's settings stay on the actor)"
        }
        (_, "sequence" | "skip" | "default") => " (this is a field attribute: put it on a field)",
        (_, "name" | "alias") => " (this is a variant attribute of #[derive(PersistentEvent)])",
        _ => "",
    }
}

pub fn parse_field(attrs: &[Attribute], place: FieldPlace, errors: &mut Errors) -> FieldAttrs {
    let keys = place.keys();
    let mut f = FieldAttrs::default();
    for attr in persist_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta);
            let span = meta.path.span();
            if !keys.contains(&key.as_str()) {
                let hint = place.hint(&key);
                let hint = if hint.is_empty() {
                    did_you_mean(&key, keys)
                } else {
                    hint.to_owned()
                };
                errors.push(
                    span,
                    format!(
                        "unknown persist field attribute `{key}`{hint}; expected {}",
                        expected_one_of(keys)
                    ),
                );
                skip_value(&meta);
                return Ok(());
            }
            match key.as_str() {
                "default" => {
                    let value = if meta.input.peek(syn::Token![=]) {
                        path_value(&meta, &key, errors).map(DefaultValue::Path)
                    } else {
                        Some(DefaultValue::Trait)
                    };
                    if let Some(value) = value {
                        set_once(errors, &mut f.default, At { value, span }, &key, span);
                    }
                    return Ok(());
                }
                "name" => {
                    if let Some(lit) = string_value(&meta, &key, errors) {
                        let value = At {
                            value: lit.value(),
                            span: lit.span(),
                        };
                        set_once(errors, &mut f.name, value, &key, span);
                    }
                    return Ok(());
                }
                _ => {}
            }
            let slot = match key.as_str() {
                "id" => &mut f.id,
                "sequence" => &mut f.sequence,
                _ => &mut f.skip,
            };
            if meta.input.peek(syn::Token![=]) {
                errors.push(
                    span,
                    format!(
                        "persist field attribute `{key}` takes no value: write `#[persist({key})]`"
                    ),
                );
                skip_value(&meta);
                return Ok(());
            }
            set_once(errors, slot, span, &key, span);
            Ok(())
        });
        if let Err(e) = result {
            errors.push_err(e);
        }
    }
    f
}

/// "one of `a`, `b`" or "`a`" for a single key.
fn expected_one_of(keys: &[&str]) -> String {
    match keys {
        [one] => format!("`{one}`"),
        _ => format!("one of {}", expected_list(keys)),
    }
}

/// `format = "postcard" | "json"`: whether the format is JSON.
fn format_value(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> Option<At<bool>> {
    let lit = string_value(meta, "format", errors)?;
    match lit.value().as_str() {
        "json" => Some(At {
            value: true,
            span: lit.span(),
        }),
        "postcard" => Some(At {
            value: false,
            span: lit.span(),
        }),
        other => {
            let hint = did_you_mean(other, &["json", "postcard"]);
            errors.push(
                lit.span(),
                format!("unknown format {other:?}{hint}; expected \"postcard\" (the default, compact) or \"json\" (self-describing, feature `json`)"),
            );
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MigrateKind {
    Migrate,
    Upcast,
}

/// `migrate(from = OldLayout, with = path)` or `upcast(from = OldEvents, with = path)`.
fn migrate_value(
    meta: &ParseNestedMeta<'_>,
    kind: MigrateKind,
    errors: &mut Errors,
) -> Option<At<Migrate>> {
    let (key, usage) = match kind {
        MigrateKind::Migrate => (
            "migrate",
            "`migrate` expects `migrate(from = OldLayout, with = path)`: `OldLayout` a #[derive(StoredState)] struct of the old stored fields, `path` the function that turns it into this one",
        ),
        MigrateKind::Upcast => (
            "upcast",
            "`upcast` expects `upcast(from = OldEvents, with = path)`: `OldEvents` a #[derive(PersistentEvent)] enum of the old variants under their stored names, `path` a `fn(OldEvents) -> Self`",
        ),
    };
    let span = meta.path.span();
    if !meta.input.peek(syn::token::Paren) {
        errors.push(span, usage);
        skip_value(meta);
        return None;
    }
    let mut from = None;
    let mut with = None;
    let result = meta.parse_nested_meta(|inner| {
        let inner_key = key_name(&inner);
        match inner_key.as_str() {
            "from" => {
                if let Some(v) = parse_or_report(errors, &format!("{key}(from)"), || {
                    inner.value()?.parse::<Type>()
                }) {
                    set_once(errors, &mut from, v, "from", inner.path.span());
                }
            }
            "with" => {
                if let Some(v) = parse_or_report(errors, &format!("{key}(with)"), || {
                    inner.value()?.parse::<ExprPath>()
                }) {
                    set_once(errors, &mut with, v, "with", inner.path.span());
                }
            }
            _ => {
                let hint = did_you_mean(&inner_key, &["from", "with"]);
                errors.push(
                    inner.path.span(),
                    format!(
                        "unknown `{key}` setting `{inner_key}`{hint}; expected `from` or `with`"
                    ),
                );
                skip_value(&inner);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        errors.push_err(e);
        return None;
    }
    match (from, with) {
        (Some(from), Some(with)) => Some(At {
            value: Migrate { from, with },
            span,
        }),
        (None, _) => {
            errors.push(span, format!("`{key}` needs `from = ..`; {usage}"));
            None
        }
        (_, None) => {
            errors.push(span, format!("`{key}` needs `with = path`; {usage}"));
            None
        }
    }
}

pub fn parse_event_container(attrs: &[Attribute], errors: &mut Errors) -> EventContainer {
    let mut c = EventContainer::default();
    for attr in persist_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta);
            let span = meta.path.span();
            if key == "crate" {
                if let Some(v) = parse_or_report(errors, &key, || {
                    meta.value()?.parse::<LitStr>()?.parse::<Path>()
                }) {
                    set_once(errors, &mut c.krate, v, &key, span);
                }
            } else if key == "tags" {
                if let Some(v) = path_value(&meta, &key, errors) {
                    set_once(errors, &mut c.tags, v, &key, span);
                }
            } else if key == "format" {
                if let Some(v) = format_value(&meta, errors) {
                    set_once(errors, &mut c.json, v, &key, span);
                }
            } else if key == "upcast" {
                if let Some(v) = migrate_value(&meta, MigrateKind::Upcast, errors) {
                    set_once(errors, &mut c.upcast, v, &key, span);
                }
            } else {
                let hint = if key == "entity" || key == "event" {
                    " (entity and event go on the actor struct's #[derive(EventSourced)])"
                } else if key == "name" || key == "alias" || key == "tag" {
                    " (put it on the variant)"
                } else if key == "default" {
                    " (put it on the variant's field)"
                } else {
                    ""
                };
                let hint = if hint.is_empty() { did_you_mean(&key, &["crate", "tags", "upcast", "format"]) } else { hint.to_owned() };
                errors.push(
                    span,
                    format!(
                        "unknown persist attribute `{key}` for #[derive(PersistentEvent)]{hint}; expected one of `crate`, `tags`, `upcast`, `format`"
                    ),
                );
                skip_value(&meta);
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push_err(e);
        }
    }
    c
}

pub fn parse_variant(attrs: &[Attribute], errors: &mut Errors) -> VariantAttrs {
    let mut v = VariantAttrs::default();
    for attr in persist_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_name(&meta);
            let span = meta.path.span();
            match key.as_str() {
                "name" => {
                    if let Some(lit) = string_value(&meta, &key, errors) {
                        let value = At { value: lit.value(), span: lit.span() };
                        set_once(errors, &mut v.name, value, &key, span);
                    }
                }
                "alias" => {
                    if let Some(lit) = string_value(&meta, &key, errors) {
                        v.aliases.push(At { value: lit.value(), span: lit.span() });
                    }
                }
                "tag" => {
                    if let Some(lit) = string_value(&meta, &key, errors) {
                        v.tags.push(At { value: lit.value(), span: lit.span() });
                    }
                }
                _ => {
                    let hint = if key == "tags" {
                        " (`tags = path` goes on the enum; a variant takes `tag = \"..\"`)".to_owned()
                    } else if key == "default" {
                        " (this is a field attribute: put it on the variant's field)".to_owned()
                    } else if matches!(key.as_str(), "format" | "upcast" | "crate") {
                        format!(" (`{key}` goes on the enum)")
                    } else {
                        did_you_mean(&key, &["name", "alias", "tag"])
                    };
                    errors.push(
                        span,
                        format!(
                            "unknown persist variant attribute `{key}`{hint}; expected one of `name`, `alias`, `tag`"
                        ),
                    );
                    skip_value(&meta);
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push_err(e);
        }
    }
    v
}

/// Consumes `= value` or `(..)` after a key already reported, so that parsing
/// continues with the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) {
    if meta.input.peek(syn::Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<syn::Expr>());
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.parse_nested_meta(|inner| {
            skip_value(&inner);
            Ok(())
        });
    }
}

fn parse_or_report<T>(
    errors: &mut Errors,
    key: &str,
    f: impl FnOnce() -> syn::Result<T>,
) -> Option<T> {
    match f() {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e.span(), format!("persist attribute `{key}`: {e}"));
            None
        }
    }
}

/// `key = path` (of a function): any other value is reported as such, and
/// consumed, so that parsing goes on with the next key.
fn path_value(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> Option<ExprPath> {
    let value = match meta.value() {
        Ok(v) => v,
        Err(_) => {
            errors.push(
                meta.path.span(),
                format!("persist attribute `{key}` expects a path: `{key} = path`"),
            );
            return None;
        }
    };
    match value.parse::<syn::Expr>() {
        Ok(syn::Expr::Path(path)) => Some(path),
        Ok(other) => {
            let shown = quote::ToTokens::to_token_stream(&other).to_string();
            errors.push(
                syn::spanned::Spanned::span(&other),
                format!(
                    "persist attribute `{key}` expects the path of a function \
                     (`{key} = my_fn` or `{key} = Self::my_fn`), not `{shown}`"
                ),
            );
            None
        }
        Err(e) => {
            errors.push(e.span(), format!("persist attribute `{key}`: {e}"));
            None
        }
    }
}

/// `key = "string"`.
fn string_value(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> Option<LitStr> {
    let value = match meta.value() {
        Ok(v) => v,
        Err(_) => {
            errors.push(
                meta.path.span(),
                format!("persist attribute `{key}` expects a string: `{key} = \"...\"`"),
            );
            return None;
        }
    };
    match value.parse::<syn::Lit>() {
        Ok(syn::Lit::Str(s)) => Some(s),
        Ok(other) => {
            errors.push(
                other.span(),
                format!("persist attribute `{key}` expects a string literal: `{key} = \"...\"`"),
            );
            None
        }
        Err(e) => {
            let _ = value.parse::<syn::Expr>();
            errors.push(
                e.span(),
                format!("persist attribute `{key}` expects a string literal: `{key} = \"...\"`"),
            );
            None
        }
    }
}

/// `key = 123`.
fn int_value<N>(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> Option<At<N>>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    let expected = format!("persist attribute `{key}` expects a whole number: `{key} = 100`");
    let Ok(value) = meta.value() else {
        errors.push(meta.path.span(), expected);
        return None;
    };
    match value.parse::<syn::Lit>() {
        Ok(syn::Lit::Int(i)) => parse_int::<N>(&i, key, errors),
        Ok(other) => {
            errors.push(other.span(), expected);
            None
        }
        Err(e) => {
            let _ = value.parse::<syn::Expr>();
            errors.push(e.span(), expected);
            None
        }
    }
}

fn parse_int<N>(lit: &LitInt, key: &str, errors: &mut Errors) -> Option<At<N>>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    match lit.base10_parse::<N>() {
        Ok(value) => Some(At {
            value,
            span: lit.span(),
        }),
        Err(e) => {
            errors.push(lit.span(), format!("persist attribute `{key}`: {e}"));
            None
        }
    }
}

/// `key` alone (true) or `key = true|false`.
fn flag_value(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> Option<At<bool>> {
    let span = meta.path.span();
    if !meta.input.peek(syn::Token![=]) {
        return Some(At { value: true, span });
    }
    let value = meta.value().ok()?;
    match value.parse::<LitBool>() {
        Ok(b) => Some(At {
            value: b.value,
            span: b.span(),
        }),
        Err(e) => {
            let _ = value.parse::<syn::Expr>();
            errors.push(
                e.span(),
                format!("persist attribute `{key}` expects `true` or `false`, or no value"),
            );
            None
        }
    }
}

/// `key = "500ms" | "30s" | "5m" | "1h"`, in milliseconds.
fn duration_value(meta: &ParseNestedMeta<'_>, key: &str, errors: &mut Errors) -> Option<At<u64>> {
    let lit = string_value(meta, key, errors)?;
    match parse_duration_ms(&lit.value()) {
        Some(ms) => Some(At {
            value: ms,
            span: lit.span(),
        }),
        None => {
            errors.push(
                lit.span(),
                format!(
                    "persist attribute `{key}` expects a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\", got {:?}",
                    lit.value()
                ),
            );
            None
        }
    }
}

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m` or `h`.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[derive(Clone, Copy)]
enum PolicyKind {
    Recovery,
    Persist,
}

/// `key = "stop"` and the like, or `key = retry(max_attempts = 5, initial_delay = "100ms")`.
fn policy_value(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    kind: PolicyKind,
    errors: &mut Errors,
) -> Option<At<Policy>> {
    let names = match kind {
        PolicyKind::Recovery => {
            "\"stop\", \"skip_and_start\" or retry(max_attempts = 3, initial_delay = \"100ms\")"
        }
        PolicyKind::Persist => {
            "\"stop\", \"return_error\" or retry(max_attempts = 3, initial_delay = \"100ms\")"
        }
    };
    let Ok(input) = meta.value() else {
        errors.push(
            meta.path.span(),
            format!("persist attribute `{key}` expects {names}"),
        );
        return None;
    };
    if input.peek(LitStr) {
        let lit: LitStr = input.parse().ok()?;
        let policy = match (kind, lit.value().as_str()) {
            (_, "stop") => Policy::Stop,
            (PolicyKind::Recovery, "skip_and_start") => Policy::SkipAndStart,
            (PolicyKind::Persist, "return_error") => Policy::ReturnError,
            _ => {
                errors.push(
                    lit.span(),
                    format!("persist attribute `{key}` expects {names}"),
                );
                return None;
            }
        };
        return Some(At {
            value: policy,
            span: lit.span(),
        });
    }
    let ident: syn::Ident = match input.parse() {
        Ok(i) if i == "retry" => i,
        other => {
            let span = other.map(|i| i.span()).unwrap_or_else(|e| e.span());
            let _ = input.parse::<syn::Expr>();
            errors.push(span, format!("persist attribute `{key}` expects {names}"));
            return None;
        }
    };
    let parsed = (|| {
        let content;
        syn::parenthesized!(content in input);
        content.parse_terminated(syn::MetaNameValue::parse, syn::Token![,])
    })();
    let mut max_attempts = None;
    let mut delay = None;
    let pairs = match parsed {
        Ok(p) => p,
        Err(e) => {
            errors.push(
                e.span(),
                format!(
                    "`retry` expects `retry(max_attempts = 3, initial_delay = \"100ms\")`: {e}"
                ),
            );
            return None;
        }
    };
    for pair in pairs {
        let name = pair
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let lit = match &pair.value {
            syn::Expr::Lit(l) => Some(&l.lit),
            _ => None,
        };
        match (name.as_str(), lit) {
            ("max_attempts", Some(syn::Lit::Int(i))) => {
                if let Some(n) = parse_int::<u32>(i, "max_attempts", errors) {
                    if n.value == 0 {
                        errors.push(n.span, "`max_attempts` counts every try and must be at least 1");
                    }
                    set_once(errors, &mut max_attempts, n.value, "max_attempts", pair.path.span());
                }
            }
            ("initial_delay", Some(syn::Lit::Str(s))) => match parse_duration_ms(&s.value()) {
                Some(ms) => set_once(errors, &mut delay, ms, "initial_delay", pair.path.span()),
                None => errors.push(
                    s.span(),
                    "`initial_delay` expects a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\"",
                ),
            },
            ("max_attempts", _) => errors.push(pair.value.span(), "`max_attempts` expects a whole number"),
            ("initial_delay", _) => errors.push(
                pair.value.span(),
                "`initial_delay` expects a duration string such as \"100ms\"",
            ),
            _ => errors.push(
                pair.path.span(),
                format!("unknown `retry` setting `{name}`; expected `max_attempts` or `initial_delay`"),
            ),
        }
    }
    let Some(initial_delay_ms) = delay else {
        errors.push(ident.span(), "`retry(..)` needs `initial_delay = \"...\"`");
        return None;
    };
    Some(At {
        value: Policy::Retry {
            max_attempts,
            initial_delay_ms,
        },
        span: ident.span(),
    })
}
