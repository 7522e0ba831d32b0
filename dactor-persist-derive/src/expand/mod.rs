//! Code generation, one file per derive, over the checked model.
//!
//! Generated code reaches the runtime only through
//! `::dactor_persist::__private` (or the path given by `crate = "..."`), and is
//! wrapped in `const _: () = { ... };`.

pub mod durable_state;
pub mod event;
pub mod event_sourced;
pub mod stored_state;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Generics, Ident, Path, Type};

use crate::ast::Actor;
use crate::attr::{DefaultValue, Policy};

/// The path of the runtime's private module.
pub fn private(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::dactor_persist::__private),
    }
}

/// `where` with the input's own predicates plus `extra`.
pub fn where_clause(generics: &Generics, extra: &[TokenStream]) -> TokenStream {
    let own = generics.where_clause.as_ref().map(|w| &w.predicates);
    let own = own.into_iter().flatten();
    quote!(where #(#own,)* #(#extra,)*)
}

/// The tuple of `items` with tuples nested so that none has more than
/// 16 elements (serde's limit). Postcard writes a tuple as its elements one
/// after another, so nesting does not change the bytes.
pub fn tuple(items: &[TokenStream]) -> TokenStream {
    const MAX: usize = 16;
    if items.len() <= MAX {
        return quote!((#(#items,)*));
    }
    let chunks: Vec<TokenStream> = items.chunks(MAX).map(tuple).collect();
    tuple(&chunks)
}

/// FNV-1a, 64 bits: a stable hash that does not depend on the compiler.
pub fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The layout fingerprint stored with every snapshot and state: the stored
/// fields' names and types (white space removed) and the schema version,
/// leaving out the defaulted fields whose bit is set in `omitted`.
pub fn fingerprint(actor: &Actor<'_>, omitted: u32) -> u64 {
    let version = actor.attrs.schema_version.as_ref().map_or(0, |v| v.value);
    let mut text = format!("v{version};");
    let mut defaulted = 0;
    for f in actor.stored_fields() {
        if f.attrs.default.is_some() {
            let bit = 1u32 << defaulted;
            defaulted += 1;
            if omitted & bit != 0 {
                continue;
            }
        }
        let ty = f.ty;
        let ty: String = quote!(#ty)
            .to_string()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        text.push_str(&format!("{}:{ty};", f.stored_name()));
    }
    fnv1a(&text)
}

/// Every layout an actor's stored fields read: `(fingerprint, present)`, the
/// current one (every defaulted field present) first, then each combination
/// of defaulted fields missing.
pub fn layouts(actor: &Actor<'_>) -> Vec<(u64, u32)> {
    let count = actor
        .defaulted_fields()
        .count()
        .min(crate::check::MAX_DEFAULTED);
    let all: u32 = (1u32 << count) - 1;
    (0..=all)
        .rev()
        .map(|present| (fingerprint(actor, all & !present), present))
        .collect()
}

/// `tokens` with every span set to `span`, so that a compiler error about
/// them points at the user's code (`quote_spanned!` does not re-span
/// interpolated tokens such as the private path).
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// The bound `ty: trait_` with every token spanned on `ty`, so that an
/// unmet bound is reported at the user's field or attribute.
pub fn bound_on(ty: &impl quote::ToTokens, trait_: TokenStream) -> TokenStream {
    let span = ty.span();
    respan(quote!(#ty: #trait_), span)
}

/// Bounds every stored field must meet, each spanned on its field's type so
/// that an unserializable field is reported where it is declared.
pub fn stored_bounds<'a>(
    private: &TokenStream,
    types: impl IntoIterator<Item = &'a Type>,
) -> Vec<TokenStream> {
    types
        .into_iter()
        .map(|ty| bound_on(ty, quote!(#private::Stored)))
        .collect()
}

/// The bound on the id field's type, when the id is a field.
pub fn id_bound(actor: &Actor<'_>, private: &TokenStream) -> Option<TokenStream> {
    if actor.attrs.id_fn.is_some() {
        return None;
    }
    actor
        .id_field()
        .map(|f| bound_on(f.ty, quote!(#private::IdField)))
}

/// The snapshot or state codec of an actor's stored fields:
/// `(encode, decode)` method bodies. `kind` is the `StoredAs` variant
/// (`Snapshot` or `State`) that decoding errors name.
pub fn state_codec(
    actor: &Actor<'_>,
    private: &TokenStream,
    kind: TokenStream,
) -> (TokenStream, TokenStream) {
    let name = actor.ident.to_string();
    let kind = quote!(#private::StoredAs::#kind);
    let encode = encode_stored(actor, private);
    let fields = DecodedFields::new(actor, private, &kind, quote!(&__dp_pid));
    let table = layout_table(actor);
    let current = fingerprint(actor, 0);
    let DecodedFields {
        stmts,
        vars,
        idents,
    } = fields;
    let otherwise = migrate_or(
        actor,
        private,
        &kind,
        quote!(#private::incompatible_state(__dp_stored, #current, #name, #kind, &__dp_pid)),
    );
    let json_misfit = migrate_or(
        actor,
        private,
        &kind,
        quote!(#private::json::state_does_not_fit(&__dp_why, #name, #kind, &__dp_pid)),
    );
    let json_decode = json_state_decode(
        actor,
        private,
        quote!(&payload),
        quote! {
            #(self.#idents = #vars;)*
            #private::core::result::Result::Ok(())
        },
        json_misfit,
    );
    let decode = quote! {
        let __dp_pid = <Self as #private::PersistentActor>::persistence_id(self);
        #json_decode
        match #private::state_layout(&payload, #table, #name, #kind, &__dp_pid)? {
            #private::Layout::Known { present: __dp_present, fields: __dp_fields } => {
                #stmts
                #(self.#idents = #vars;)*
                #private::core::result::Result::Ok(())
            }
            #private::Layout::Other(__dp_stored) => {
                #otherwise
            }
        }
    };
    (encode, decode)
}

/// Whether the struct's snapshots or states are JSON.
pub fn is_json(actor: &Actor<'_>) -> bool {
    actor.attrs.json.as_ref().is_some_and(|j| j.value)
}

/// The check that the `json` feature is on, spanned on `format = "json"`.
fn require_json(actor: &Actor<'_>, private: &TokenStream) -> TokenStream {
    let span = actor
        .attrs
        .json
        .as_ref()
        .map_or_else(Span::call_site, |j| j.span);
    respan(quote!(#private::json::require::<()>();), span)
}

/// A payload that is not one of the actor's own layouts: through its
/// `migrate(from, with)` when it declares one, else (or when that layout
/// does not know the payload either) `Err(fail)`.
fn migrate_or(
    actor: &Actor<'_>,
    private: &TokenStream,
    kind: &TokenStream,
    fail: TokenStream,
) -> TokenStream {
    let Some(m) = &actor.attrs.migrate else {
        return quote!(#private::core::result::Result::Err(#fail));
    };
    let from = &m.value.from;
    let with = &m.value.with;
    let from_bound = respan(quote!(<#from as #private::StoredState>), from.span());
    quote! {
        match #from_bound::decode_layout(&payload, #kind, &__dp_pid)? {
            #private::core::option::Option::Some(__dp_old) => {
                #with(self, __dp_old);
                #private::core::result::Result::Ok(())
            }
            #private::core::option::Option::None => #private::core::result::Result::Err(#fail),
        }
    }
}

/// `encode_state(fingerprint, &(fields..), name)` over `self`'s stored fields,
/// or their JSON object.
pub fn encode_stored(actor: &Actor<'_>, private: &TokenStream) -> TokenStream {
    let fp = fingerprint(actor, 0);
    let name = actor.ident.to_string();
    if is_json(actor) {
        let require = require_json(actor, private);
        let keys = actor.stored_fields().map(|f| f.stored_name());
        let idents = actor.stored_fields().map(|f| f.ident);
        return quote! {
            #require
            let mut __dp_m = #private::json::Map::new();
            #(#private::json::field(&mut __dp_m, #keys, &self.#idents, #name)?;)*
            #private::json::encode_state(__dp_m, #name)
        };
    }
    let refs: Vec<TokenStream> = actor
        .stored_fields()
        .map(|f| {
            let ident = f.ident;
            quote!(&self.#ident)
        })
        .collect();
    let refs = tuple(&refs);
    quote!(#private::encode_state(#fp, &#refs, #name))
}

/// Decoding a JSON state or snapshot, when the struct's format is JSON:
/// statements that return `fit` (with the fields bound to `__dp_f0..`) when
/// the payload is a JSON object that fits, `misfit` (with `__dp_why`) when it
/// is one that does not, and fall through when it is not JSON (postcard).
pub fn json_state_decode(
    actor: &Actor<'_>,
    private: &TokenStream,
    payload: TokenStream,
    fit: TokenStream,
    misfit: TokenStream,
) -> TokenStream {
    if !is_json(actor) {
        return TokenStream::new();
    }
    let json = quote!(#private::json);
    let stored: Vec<_> = actor.stored_fields().collect();
    let vars: Vec<Ident> = (0..stored.len())
        .map(|i| format_ident!("__dp_f{}", i))
        .collect();
    let types: Vec<&Type> = stored.iter().map(|f| f.ty).collect();
    let takes = stored.iter().zip(&vars).map(|(f, var)| {
        let ty = f.ty;
        let key = f.stored_name();
        let missing = format!("it has no field `{key}`");
        let fallback = match &f.attrs.default {
            Some(d) => default_expr(&d.value, ty, d.span, private),
            None => quote!(break '__dp_fit #private::core::result::Result::Err(
                #private::std::string::String::from(#missing)
            )),
        };
        quote! {
            let #var: #ty = match #json::take_state::<#ty>(&mut __dp_jm, #key) {
                #private::core::result::Result::Ok(#private::core::option::Option::Some(__dp_v)) => __dp_v,
                #private::core::result::Result::Ok(#private::core::option::Option::None) => #fallback,
                #private::core::result::Result::Err(__dp_e) => break '__dp_fit #private::core::result::Result::Err(__dp_e),
            };
        }
    });
    let require = require_json(actor, private);
    quote! {
        #require
        if let #private::core::option::Option::Some(mut __dp_jm) = #json::parse_state(#payload) {
            let __dp_fit: #private::core::result::Result<(#(#types,)*), #private::std::string::String> = '__dp_fit: {
                #(#takes)*
                #private::core::result::Result::Ok((#(#vars,)*))
            };
            return match __dp_fit {
                #private::core::result::Result::Ok((#(#vars,)*)) => { #fit }
                #private::core::result::Result::Err(__dp_why) => { #misfit }
            };
        }
    }
}

/// `&[(fingerprint, present), ..]`.
pub fn layout_table(actor: &Actor<'_>) -> TokenStream {
    let entries = layouts(actor)
        .into_iter()
        .map(|(fp, present)| quote!((#fp, #present)));
    quote!(&[#(#entries),*])
}

/// Statements decoding a known layout's stored fields, one by one, into
/// `__dp_f0..`, from `__dp_fields` with `__dp_present` saying which
/// defaulted fields are there.
pub struct DecodedFields<'a> {
    pub stmts: TokenStream,
    pub vars: Vec<Ident>,
    pub idents: Vec<&'a Ident>,
}

impl<'a> DecodedFields<'a> {
    pub fn new(
        actor: &Actor<'a>,
        private: &TokenStream,
        kind: &TokenStream,
        pid: TokenStream,
    ) -> Self {
        let name = actor.ident.to_string();
        let mut stmts = quote! {
            let _ = __dp_present;
            let mut __dp_rest: &[u8] = __dp_fields;
        };
        let mut vars = Vec::new();
        let mut idents = Vec::new();
        let mut defaulted = 0u32;
        for (i, f) in actor.stored_fields().enumerate() {
            let var = format_ident!("__dp_f{}", i);
            let ty = f.ty;
            let field = f.ident.to_string();
            let take = quote! {
                #private::take_state_field(&mut __dp_rest, #field, #name, #kind, #pid)?
            };
            let value = match &f.attrs.default {
                None => take,
                Some(d) => {
                    let bit = 1u32 << defaulted;
                    defaulted += 1;
                    let fallback = default_expr(&d.value, ty, d.span, private);
                    quote! {
                        if __dp_present & #bit != 0 { #take } else { #fallback }
                    }
                }
            };
            stmts.extend(quote!(let #var: #ty = #value;));
            vars.push(var);
            idents.push(f.ident);
        }
        stmts.extend(quote!(#private::state_end(__dp_rest, #name, #kind, #pid)?;));
        DecodedFields {
            stmts,
            vars,
            idents,
        }
    }
}

/// The value of a field missing from an old payload.
pub fn default_expr(
    value: &DefaultValue,
    ty: &Type,
    span: Span,
    private: &TokenStream,
) -> TokenStream {
    match value {
        DefaultValue::Trait => {
            let call = respan(
                quote!(<#ty as #private::core::default::Default>::default()),
                span,
            );
            quote!(#call)
        }
        DefaultValue::Path(path) => quote_spanned!(path.span()=> #path()),
    }
}

/// `impl Actor` (unless `manual_actor`) and `impl PersistentActor`.
pub fn persistent_actor(
    actor: &Actor<'_>,
    private: &TokenStream,
    bounds: &[TokenStream],
) -> TokenStream {
    let ident = actor.ident;
    let (impl_g, ty_g, _) = actor.generics.split_for_impl();
    let entity = actor
        .attrs
        .entity
        .as_ref()
        .map(|e| e.value.clone())
        .unwrap_or_default();

    let id_expr = match (&actor.attrs.id_fn, actor.id_field()) {
        (Some(path), _) => quote_spanned!(path.span()=> &#path(self)),
        (None, Some(field)) => {
            let f = field.ident;
            quote!(&self.#f)
        }
        (None, None) => quote!(&""),
    };
    let where_clause = where_clause(actor.generics, bounds);

    let recovery = actor.attrs.recovery_failure.as_ref().map(|p| {
        let policy = policy_tokens(&p.value, private, "RecoveryFailurePolicy");
        quote! {
            fn recovery_failure_policy(&self) -> #private::RecoveryFailurePolicy { #policy }
        }
    });
    let persist = actor.attrs.persist_failure.as_ref().map(|p| {
        let policy = policy_tokens(&p.value, private, "PersistFailurePolicy");
        quote! {
            fn persist_failure_policy(&self) -> #private::PersistFailurePolicy { #policy }
        }
    });
    let actor_impl = (!actor.attrs.manual_actor.as_ref().is_some_and(|m| m.value)).then(|| {
        quote! {
            #[automatically_derived]
            impl #impl_g #private::Actor for #ident #ty_g #where_clause {
                type Args = Self;
                type Deps = ();
                fn create(args: Self, _deps: ()) -> Self {
                    args
                }
            }
        }
    });
    quote! {
        #actor_impl

        #[automatically_derived]
        impl #impl_g #private::PersistentActor for #ident #ty_g #where_clause {
            fn persistence_id(&self) -> #private::PersistenceId {
                #private::persistence_id(#entity, #id_expr)
            }
            #recovery
            #persist
        }
    }
}

/// The bound that every derived actor meets: `Self: Send + 'static`.
pub fn actor_bound(actor: &Actor<'_>, private: &TokenStream) -> TokenStream {
    let ident = actor.ident;
    let (_, ty_g, _) = actor.generics.split_for_impl();
    quote!(#ident #ty_g: #private::core::marker::Send + 'static)
}

/// A policy as an expression of `enum_name` (RecoveryFailurePolicy or PersistFailurePolicy).
fn policy_tokens(policy: &Policy, private: &TokenStream, enum_name: &str) -> TokenStream {
    let ty = Ident::new(enum_name, Span::call_site());
    match policy {
        Policy::Stop => quote!(#private::#ty::Stop),
        Policy::SkipAndStart => quote!(#private::#ty::SkipAndStart),
        Policy::ReturnError => quote!(#private::#ty::ReturnError),
        Policy::Retry {
            max_attempts,
            initial_delay_ms,
        } => {
            let max = match max_attempts {
                Some(n) => quote!(#private::core::option::Option::Some(#n)),
                None => quote!(#private::core::option::Option::None),
            };
            quote! {
                #private::#ty::Retry {
                    max_attempts: #max,
                    initial_delay: #private::core::time::Duration::from_millis(#initial_delay_ms),
                }
            }
        }
    }
}

/// `Some(Duration)` from optional milliseconds.
pub fn opt_duration(ms: Option<u64>, private: &TokenStream) -> TokenStream {
    match ms {
        Some(ms) => quote!(#private::core::option::Option::Some(
            #private::core::time::Duration::from_millis(#ms)
        )),
        None => quote!(#private::core::option::Option::None),
    }
}

/// `Some(n)` or `None`.
pub fn opt<T: quote::ToTokens>(value: Option<T>, private: &TokenStream) -> TokenStream {
    match value {
        Some(v) => quote!(#private::core::option::Option::Some(#v)),
        None => quote!(#private::core::option::Option::None),
    }
}
