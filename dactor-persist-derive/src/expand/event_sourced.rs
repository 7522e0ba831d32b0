//! `#[derive(EventSourced)]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{
    actor_bound, bound_on, id_bound, opt, opt_duration, persistent_actor, private, respan,
    state_codec, stored_bounds, where_clause,
};
use crate::ast::Actor;

pub fn expand(actor: &Actor<'_>) -> TokenStream {
    let private = private(actor.attrs.krate.as_ref());
    let ident = actor.ident;
    let (impl_g, ty_g, _) = actor.generics.split_for_impl();
    let Some(event) = actor.attrs.event.as_ref() else {
        return TokenStream::new();
    };
    let Some(seq) = actor.sequence_field() else {
        return TokenStream::new();
    };

    let mut bounds = vec![actor_bound(actor, &private)];
    bounds.extend(stored_bounds(&private, actor.stored_fields().map(|f| f.ty)));
    bounds.extend(id_bound(actor, &private));
    bounds.push(bound_on(event, quote!(#private::PersistentEvent)));
    bounds.push(bound_on(seq.ty, quote!(#private::IsSequenceId)));

    let apply = match &actor.attrs.apply {
        Some(path) => quote_spanned!(path.span()=> #path(self, event)),
        None => {
            bounds.push(respan(
                quote!(Self: #private::ApplyEvent<#event>),
                ident.span(),
            ));
            quote!(<Self as #private::ApplyEvent<#event>>::apply_event(self, event))
        }
    };
    let where_clause = where_clause(actor.generics, &bounds);
    let persistent = persistent_actor(actor, &private, &bounds);
    let (encode, decode) = state_codec(actor, &private, quote!(Snapshot));
    let seq_field = seq.ident;

    let a = &actor.attrs;
    let snapshot_config = (a.snapshot_every.is_some()
        || a.snapshot_interval_ms.is_some()
        || a.keep_snapshots.is_some()
        || a.delete_events_on_snapshot.is_some())
    .then(|| {
        let every = opt(a.snapshot_every.as_ref().map(|n| n.value), &private);
        let interval = opt_duration(a.snapshot_interval_ms.as_ref().map(|n| n.value), &private);
        let keep = opt(a.keep_snapshots.as_ref().map(|n| n.value), &private);
        let delete = a
            .delete_events_on_snapshot
            .as_ref()
            .is_some_and(|d| d.value);
        quote! {
            fn snapshot_config(&self) -> #private::core::option::Option<#private::SnapshotConfig> {
                #private::core::option::Option::Some(#private::SnapshotConfig {
                    every_n_events: #every,
                    interval: #interval,
                    retention_count: #keep,
                    delete_events_on_snapshot: #delete,
                })
            }
        }
    });

    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #persistent

            #[automatically_derived]
            impl #impl_g #private::EventSourced for #ident #ty_g #where_clause {
                type Event = #event;

                fn apply(&mut self, event: &#event) {
                    #apply
                }

                fn deserialize_event(
                    &self,
                    payload: &[u8],
                ) -> #private::core::result::Result<#event, #private::PersistError> {
                    <#event as #private::PersistentEvent>::decode(payload)
                }

                fn deserialize_entry(
                    &self,
                    entry: &#private::JournalEntry,
                ) -> #private::core::result::Result<#event, #private::PersistError> {
                    <#event as #private::PersistentEvent>::decode_entry(&entry.event_type, &entry.payload)
                }

                fn deserialize_entry_into(
                    &self,
                    entry: &#private::JournalEntry,
                    out: &mut #private::std::vec::Vec<#event>,
                ) -> #private::core::result::Result<(), #private::PersistError> {
                    <#event as #private::PersistentEvent>::decode_entry_into(&entry.event_type, &entry.payload, out)
                }

                fn serialize_event(
                    &self,
                    event: &#event,
                ) -> #private::core::result::Result<#private::std::vec::Vec<u8>, #private::PersistError> {
                    <#event as #private::PersistentEvent>::encode(event)
                }

                fn event_type(&self, event: &#event) -> &'static str {
                    <#event as #private::PersistentEvent>::event_type(event)
                }

                fn event_tags(&self, event: &#event) -> #private::std::vec::Vec<#private::std::string::String> {
                    <#event as #private::PersistentEvent>::tags(event)
                }

                fn restore_snapshot(
                    &mut self,
                    payload: #private::std::vec::Vec<u8>,
                ) -> #private::core::result::Result<(), #private::PersistError> {
                    #decode
                }

                fn snapshot_payload(
                    &self,
                ) -> #private::core::result::Result<#private::std::vec::Vec<u8>, #private::PersistError> {
                    #encode
                }

                #snapshot_config

                fn last_sequence_id(&self) -> #private::SequenceId {
                    #private::IsSequenceId::get(&self.#seq_field)
                }

                fn set_last_sequence_id(&mut self, seq: #private::SequenceId) {
                    #private::IsSequenceId::set(&mut self.#seq_field, seq)
                }
            }
        };
    }
}
