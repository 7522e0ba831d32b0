//! `#[derive(StoredState)]`: an earlier layout of a state or snapshot.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

use super::{
    DecodedFields, encode_stored, json_state_decode, layout_table, private, respan, stored_bounds,
    where_clause,
};
use crate::ast::Actor;

pub fn expand(layout: &Actor<'_>) -> TokenStream {
    let private = private(layout.attrs.krate.as_ref());
    let ident = layout.ident;
    let (impl_g, ty_g, _) = layout.generics.split_for_impl();
    let bounds = stored_bounds(&private, layout.stored_fields().map(|f| f.ty));
    let where_clause = where_clause(layout.generics, &bounds);
    let kind = quote!(__dp_kind);
    let DecodedFields {
        stmts,
        vars,
        idents,
    } = DecodedFields::new(layout, &private, &kind, quote!(__dp_pid));
    let table = layout_table(layout);
    let encode = encode_stored(layout, &private);
    let name = ident.to_string();
    let otherwise = match &layout.attrs.migrate {
        Some(m) => {
            let from = &m.value.from;
            let with = &m.value.with;
            let from_bound = respan(quote!(<#from as #private::StoredState>), from.span());
            quote! {
                #private::core::result::Result::Ok(
                    #from_bound::decode_layout(__dp_payload, __dp_kind, __dp_pid)?.map(#with),
                )
            }
        }
        None => quote!(#private::core::result::Result::Ok(#private::core::option::Option::None)),
    };

    // A JSON payload that does not fit: the same older layouts, if any.
    let json_misfit = quote! {
        let _ = __dp_why;
        #otherwise
    };
    let json_decode = json_state_decode(
        layout,
        &private,
        quote!(__dp_payload),
        quote! {
            #private::core::result::Result::Ok(#private::core::option::Option::Some(
                Self { #(#idents: #vars),* },
            ))
        },
        json_misfit,
    );

    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_g #private::StoredState for #ident #ty_g #where_clause {
                fn decode_layout(
                    __dp_payload: &[u8],
                    __dp_kind: #private::StoredAs,
                    __dp_pid: &#private::PersistenceId,
                ) -> #private::core::result::Result<#private::core::option::Option<Self>, #private::PersistError> {
                    #json_decode
                    match #private::state_layout(__dp_payload, #table, #name, __dp_kind, __dp_pid)? {
                        #private::Layout::Known { present: __dp_present, fields: __dp_fields } => {
                            #stmts
                            #private::core::result::Result::Ok(#private::core::option::Option::Some(
                                Self { #(#idents: #vars),* },
                            ))
                        }
                        #private::Layout::Other(_) => {
                            #otherwise
                        }
                    }
                }

                fn encode_layout(
                    &self,
                ) -> #private::core::result::Result<#private::std::vec::Vec<u8>, #private::PersistError> {
                    #encode
                }
            }
        };
    }
}
