//! `#[derive(DurableState)]`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{
    actor_bound, id_bound, opt, opt_duration, persistent_actor, private, state_codec,
    stored_bounds, where_clause,
};
use crate::ast::Actor;

pub fn expand(actor: &Actor<'_>) -> TokenStream {
    let private = private(actor.attrs.krate.as_ref());
    let ident = actor.ident;
    let (impl_g, ty_g, _) = actor.generics.split_for_impl();

    let mut bounds = vec![actor_bound(actor, &private)];
    bounds.extend(stored_bounds(&private, actor.stored_fields().map(|f| f.ty)));
    bounds.extend(id_bound(actor, &private));
    let where_clause = where_clause(actor.generics, &bounds);
    let persistent = persistent_actor(actor, &private, &bounds);
    let (encode, decode) = state_codec(actor, &private, quote!(State));

    let a = &actor.attrs;
    let save_config = (a.save_every.is_some() || a.save_interval_ms.is_some()).then(|| {
        let every = opt(a.save_every.as_ref().map(|n| n.value), &private);
        let interval = opt_duration(a.save_interval_ms.as_ref().map(|n| n.value), &private);
        quote! {
            fn save_config(&self) -> #private::core::option::Option<#private::SaveConfig> {
                #private::core::option::Option::Some(#private::SaveConfig {
                    every_n_messages: #every,
                    interval: #interval,
                })
            }
        }
    });

    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #persistent

            #[automatically_derived]
            impl #impl_g #private::DurableState for #ident #ty_g #where_clause {
                fn serialize_state(
                    &self,
                ) -> #private::core::result::Result<#private::std::vec::Vec<u8>, #private::PersistError> {
                    #encode
                }

                fn restore_state(
                    &mut self,
                    payload: #private::std::vec::Vec<u8>,
                ) -> #private::core::result::Result<(), #private::PersistError> {
                    #decode
                }

                #save_config
            }
        };
    }
}
