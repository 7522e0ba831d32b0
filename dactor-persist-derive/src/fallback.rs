//! What a derive emits next to its errors: the trait impls with bodies that
//! never run, so that the user sees the real mistake and not a cascade of
//! "trait not implemented" errors wherever the type is used.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, Path, Type};

use crate::attr::Derive;
use crate::expand::private;

/// `Actor` (unless the user writes it), `PersistentActor`, and the derive's trait.
pub fn actor(
    input: &DeriveInput,
    derive: Derive,
    krate: Option<&Path>,
    event: Option<&Type>,
    manual_actor: bool,
) -> TokenStream {
    let private = private(krate);
    let ident = &input.ident;
    let (impl_g, ty_g, where_clause) = input.generics.split_for_impl();
    let unreachable = quote!(#private::core::unreachable!("a persist derive failed to compile"));
    let actor_impl = (!manual_actor).then(|| {
        quote! {
            impl #impl_g #private::Actor for #ident #ty_g #where_clause {
                type Args = Self;
                type Deps = ();
                fn create(args: Self, _deps: ()) -> Self { args }
            }
        }
    });
    let result = quote!(#private::core::result::Result);
    let bytes = quote!(#private::std::vec::Vec<u8>);
    let err = quote!(#private::PersistError);
    let specific = match derive {
        Derive::EventSourced => {
            let event = event.map_or_else(|| quote!(()), |e| quote!(#e));
            quote! {
                impl #impl_g #private::EventSourced for #ident #ty_g #where_clause {
                    type Event = #event;
                    fn apply(&mut self, _event: &#event) { #unreachable }
                    fn deserialize_event(&self, _: &[u8]) -> #result<#event, #err> { #unreachable }
                    fn serialize_event(&self, _: &#event) -> #result<#bytes, #err> { #unreachable }
                    fn restore_snapshot(&mut self, _: #bytes) -> #result<(), #err> { #unreachable }
                    fn snapshot_payload(&self) -> #result<#bytes, #err> { #unreachable }
                    fn last_sequence_id(&self) -> #private::SequenceId { #unreachable }
                    fn set_last_sequence_id(&mut self, _: #private::SequenceId) { #unreachable }
                }
            }
        }
        Derive::DurableState => quote! {
            impl #impl_g #private::DurableState for #ident #ty_g #where_clause {
                fn serialize_state(&self) -> #result<#bytes, #err> { #unreachable }
                fn restore_state(&mut self, _: #bytes) -> #result<(), #err> { #unreachable }
            }
        },
        Derive::StoredState => {
            return quote! {
                #[allow(unreachable_code, clippy::all)]
                const _: () = {
                    impl #impl_g #private::StoredState for #ident #ty_g #where_clause {
                        fn decode_layout(
                            _: &[u8],
                            _: #private::StoredAs,
                            _: &#private::PersistenceId,
                        ) -> #result<#private::core::option::Option<Self>, #err> { #unreachable }
                        fn encode_layout(&self) -> #result<#bytes, #err> { #unreachable }
                    }
                };
            };
        }
    };
    quote! {
        #[allow(unreachable_code, clippy::all)]
        const _: () = {
            #actor_impl
            impl #impl_g #private::PersistentActor for #ident #ty_g #where_clause {
                fn persistence_id(&self) -> #private::PersistenceId { #unreachable }
            }
            #specific
        };
    }
}

/// `PersistentEvent` with bodies that never run.
pub fn event(input: &DeriveInput, krate: Option<&Path>) -> TokenStream {
    let private = private(krate);
    let ident = &input.ident;
    let (impl_g, ty_g, where_clause) = input.generics.split_for_impl();
    let unreachable = quote!(#private::core::unreachable!("a persist derive failed to compile"));
    let result = quote!(#private::core::result::Result);
    quote! {
        #[allow(unreachable_code, clippy::all)]
        const _: () = {
            impl #impl_g #private::PersistentEvent for #ident #ty_g #where_clause {
                const EVENT_TYPES: &'static [&'static str] = &[];
                fn event_type(&self) -> &'static str { #unreachable }
                fn encode(&self) -> #result<#private::std::vec::Vec<u8>, #private::PersistError> { #unreachable }
                fn decode(_: &[u8]) -> #result<Self, #private::PersistError> { #unreachable }
            }
        };
    }
}
