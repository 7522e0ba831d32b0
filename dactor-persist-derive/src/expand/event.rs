//! `#[derive(PersistentEvent)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Ident};

use super::{default_expr, private, respan, stored_bounds, tuple, where_clause};
use crate::ast::{Event, Variant};

pub fn expand(event: &Event<'_>) -> TokenStream {
    let private = private(event.attrs.krate.as_ref());
    let ident = event.ident;
    let ty_name = ident.to_string();
    let (impl_g, ty_g, _) = event.generics.split_for_impl();

    let mut bounds = vec![quote!(
        #ident #ty_g: #private::core::marker::Send + #private::core::marker::Sync + 'static
    )];
    bounds.extend(stored_bounds(
        &private,
        event
            .variants
            .iter()
            .flat_map(|v| v.fields.iter().map(|f| &f.ty)),
    ));
    let where_clause = where_clause(event.generics, &bounds);

    let names: Vec<String> = event.variants.iter().map(Variant::name).collect();
    let type_arms = event.variants.iter().zip(&names).map(|(v, name)| {
        let pat = pattern(v, &[]);
        quote!(#pat => #name)
    });
    let json = event.attrs.json.as_ref().is_some_and(|j| j.value);
    let encode_arms: Vec<TokenStream> = event
        .variants
        .iter()
        .zip(&names)
        .map(|(v, name)| {
            let vars = vars(v);
            let pat = pattern(v, &vars);
            if json {
                let body = json_encode(v, name, &vars, &ty_name, &private);
                return quote!(#pat => { #body });
            }
            let fields = tuple(&vars.iter().map(|v| quote!(#v)).collect::<Vec<_>>());
            quote!(#pat => #private::encode_event(#name, &#fields))
        })
        .collect();
    let decode_arms = event.variants.iter().zip(&names).map(|(v, name)| {
        let vars = vars(v);
        let accepted =
            std::iter::once(name.clone()).chain(v.attrs.aliases.iter().map(|a| a.value.clone()));
        let build = construct(v, &vars);
        if vars.is_empty() {
            return quote! {
                #(#accepted)|* => {
                    #private::no_fields(__dp_rest, #name, #ty_name)?;
                    #private::core::result::Result::Ok(#build)
                }
            };
        }
        let count = vars.len();
        let takes = v
            .fields
            .iter()
            .zip(&v.field_attrs)
            .zip(&vars)
            .enumerate()
            .map(|(i, ((f, attrs), var))| {
                let ty = &f.ty;
                let field = f
                    .ident
                    .as_ref()
                    .map_or_else(|| i.to_string(), |i| i.to_string());
                let take = quote! {
                    #private::take_event_field(&mut __dp_r, #i, #count, #field, #name, #ty_name)?
                };
                let value = match &attrs.default {
                    None => take,
                    Some(d) => {
                        let fallback = default_expr(&d.value, ty, d.span, &private);
                        quote!(if __dp_r.is_empty() { #fallback } else { #take })
                    }
                };
                quote!(let #var: #ty = #value;)
            });
        quote! {
            #(#accepted)|* => {
                let mut __dp_r: &[u8] = __dp_rest;
                #(#takes)*
                #private::no_fields(__dp_r, #name, #ty_name)?;
                #private::core::result::Result::Ok(#build)
            }
        }
    });

    // Tags: each variant's own, then the enum's function's.
    let variant_tags = event.variants.iter().map(|v| {
        let pat = pattern(v, &[]);
        let tags = v.attrs.tags.iter().map(|t| t.value.as_str());
        quote!(#pat => &[#(#tags),*])
    });
    let has_variant_tags = event.variants.iter().any(|v| !v.attrs.tags.is_empty());
    let tags_fn = event
        .attrs
        .tags
        .as_ref()
        .map(|path| quote_spanned!(path.span()=> __dp_tags.extend(#path(self));));
    let tags = (has_variant_tags || tags_fn.is_some()).then(|| {
        let own = has_variant_tags.then(|| {
            quote! {
                let __dp_own: &[&str] = match *self {
                    #(#variant_tags,)*
                };
                __dp_tags.extend(__dp_own.iter().map(|t| #private::std::string::ToString::to_string(t)));
            }
        });
        quote! {
            fn tags(&self) -> #private::std::vec::Vec<#private::std::string::String> {
                let mut __dp_tags: #private::std::vec::Vec<#private::std::string::String> =
                    #private::std::vec::Vec::new();
                #own
                #tags_fn
                __dp_tags
            }
        }
    });

    // Every name of each variant (its own and its aliases): an entry's stored
    // type must be one of the names of the variant its payload names.
    let same_variant_arms = event.variants.iter().zip(&names).map(|(v, name)| {
        let accepted: Vec<String> = std::iter::once(name.clone())
            .chain(v.attrs.aliases.iter().map(|a| a.value.clone()))
            .collect();
        quote!(#(#accepted)|* => #private::core::matches!(event_type, #(#accepted)|*))
    });

    // A name this enum does not know: through the older enum it upcasts
    // from, if any.
    let unknown = match &event.attrs.upcast {
        Some(up) => {
            let from = &up.value.from;
            let with = &up.value.with;
            let from = respan(quote!(#from), from.span());
            quote! {
                #private::upcast::<#from, Self, _>(
                    payload,
                    __dp_other,
                    #ty_name,
                    Self::EVENT_TYPES,
                    #with,
                )
            }
        }
        None => quote! {
            #private::core::result::Result::Err(
                #private::unknown_event(__dp_other, #ty_name, Self::EVENT_TYPES),
            )
        },
    };

    // JSON: a branch before the postcard one, which reads the rows written
    // before the type switched format.
    let (json_decode, entry_name) = if let Some(at) = event.attrs.json.as_ref().filter(|j| j.value)
    {
        let require = respan(quote!(#private::json::require::<()>();), at.span);
        let arms = event
            .variants
            .iter()
            .zip(&names)
            .map(|(v, name)| json_decode_arm(v, name, &ty_name, &private));
        (
            quote! {
                #require
                if let #private::core::option::Option::Some((__dp_jname, __dp_jfields)) =
                    #private::json::parse_event(payload)
                {
                    let _ = &__dp_jfields;
                    let __dp_other: &str = &__dp_jname;
                    return match __dp_other {
                        #(#arms,)*
                        __dp_other => #unknown,
                    };
                }
            },
            quote! {
                let __dp_jname;
                let __dp_name: &str = match #private::json::parse_event(payload) {
                    #private::core::option::Option::Some((__dp_n, _)) => {
                        __dp_jname = __dp_n;
                        &__dp_jname
                    }
                    #private::core::option::Option::None => #private::split_event(payload, #ty_name)?.0,
                };
            },
        )
    } else {
        (
            TokenStream::new(),
            quote!(let (__dp_name, _) = #private::split_event(payload, #ty_name)?;),
        )
    };

    // With an upcaster: names this enum knows decode to one event; the
    // others go through the chain, to as many events as it makes.
    let decode_entry_into = event.attrs.upcast.as_ref().map(|up| {
        let from = &up.value.from;
        let with = &up.value.with;
        let from = respan(quote!(#from), from.span());
        let all_names: Vec<String> = event
            .variants
            .iter()
            .zip(&names)
            .flat_map(|(v, name)| {
                std::iter::once(name.clone()).chain(v.attrs.aliases.iter().map(|a| a.value.clone()))
            })
            .collect();
        quote! {
            fn decode_entry_into(
                event_type: &str,
                payload: &[u8],
                out: &mut #private::std::vec::Vec<Self>,
            ) -> #private::core::result::Result<(), #private::PersistError> {
                #entry_name
                match __dp_name {
                    #(#all_names)|* => {
                        out.push(<Self as #private::PersistentEvent>::decode_entry(event_type, payload)?);
                        #private::core::result::Result::Ok(())
                    }
                    __dp_other => {
                        if __dp_other != event_type {
                            return #private::core::result::Result::Err(
                                #private::mismatched_event(event_type, __dp_other, #ty_name),
                            );
                        }
                        #private::upcast_into::<#from, Self, _>(
                            payload,
                            __dp_other,
                            #ty_name,
                            Self::EVENT_TYPES,
                            #with,
                            out,
                        )
                    }
                }
            }
        }
    });

    quote! {
        #[allow(non_upper_case_globals, unused_qualifications, unreachable_code, unused_mut, clippy::all)]
        const _: () = {
            #[automatically_derived]
            impl #impl_g #private::PersistentEvent for #ident #ty_g #where_clause {
                const EVENT_TYPES: &'static [&'static str] = &[#(#names),*];

                fn event_type(&self) -> &'static str {
                    match *self {
                        #(#type_arms,)*
                    }
                }

                fn encode(
                    &self,
                ) -> #private::core::result::Result<#private::std::vec::Vec<u8>, #private::PersistError> {
                    match *self {
                        #(#encode_arms,)*
                    }
                }

                fn decode(
                    payload: &[u8],
                ) -> #private::core::result::Result<Self, #private::PersistError> {
                    #json_decode
                    let (__dp_name, __dp_rest) = #private::split_event(payload, #ty_name)?;
                    let _ = __dp_rest;
                    match __dp_name {
                        #(#decode_arms,)*
                        __dp_other => #unknown,
                    }
                }

                #tags

                fn decode_entry(
                    event_type: &str,
                    payload: &[u8],
                ) -> #private::core::result::Result<Self, #private::PersistError> {
                    #entry_name
                    let __dp_same = match __dp_name {
                        #(#same_variant_arms,)*
                        // An unknown name: `decode` says so.
                        _ => true,
                    };
                    if !__dp_same {
                        return #private::core::result::Result::Err(
                            #private::mismatched_event(event_type, __dp_name, #ty_name),
                        );
                    }
                    <Self as #private::PersistentEvent>::decode(payload)
                }

                #decode_entry_into
            }
        };
    }
}

/// One binding per field: `__dp_f0`, `__dp_f1`, ...
fn vars(v: &Variant<'_>) -> Vec<Ident> {
    (0..v.fields.len())
        .map(|i| format_ident!("__dp_f{}", i))
        .collect()
}

/// `Self::V { a: ref x, .. }` binding `vars` by reference (or ignoring the
/// fields when `vars` is empty).
fn pattern(v: &Variant<'_>, vars: &[Ident]) -> TokenStream {
    let ident = v.ident;
    match v.fields {
        Fields::Unit => quote!(Self::#ident),
        _ if vars.is_empty() => match v.fields {
            Fields::Named(_) => quote!(Self::#ident { .. }),
            _ => quote!(Self::#ident(..)),
        },
        Fields::Named(named) => {
            let names = named.named.iter().filter_map(|f| f.ident.as_ref());
            quote!(Self::#ident { #(#names: ref #vars),* })
        }
        Fields::Unnamed(_) => quote!(Self::#ident(#(ref #vars),*)),
    }
}

/// `Self::V { a: x, .. }` built from `vars`.
fn construct(v: &Variant<'_>, vars: &[Ident]) -> TokenStream {
    let ident = v.ident;
    match v.fields {
        Fields::Unit => quote!(Self::#ident),
        Fields::Named(named) => {
            let names = named.named.iter().filter_map(|f| f.ident.as_ref());
            quote!(Self::#ident { #(#names: #vars),* })
        }
        Fields::Unnamed(_) => quote!(Self::#ident(#(#vars),*)),
    }
}

/// The JSON encoding of one variant, its fields bound by reference to `vars`.
fn json_encode(
    v: &Variant<'_>,
    name: &str,
    vars: &[Ident],
    ty_name: &str,
    private: &TokenStream,
) -> TokenStream {
    let json = quote!(#private::json);
    match v.fields {
        Fields::Unit => quote!(#json::encode_event(#name, #json::Value::Null)),
        Fields::Named(named) => {
            let keys = named
                .named
                .iter()
                .filter_map(|f| f.ident.as_ref().map(|i| i.to_string()));
            quote! {
                let mut __dp_m = #json::Map::new();
                #(#json::field(&mut __dp_m, #keys, #vars, #ty_name)?;)*
                #json::encode_event(#name, #json::Value::Object(__dp_m))
            }
        }
        Fields::Unnamed(_) => quote! {
            let mut __dp_a = #private::std::vec::Vec::new();
            #(#json::item(&mut __dp_a, #vars, #ty_name)?;)*
            #json::encode_event(#name, #json::Value::Array(__dp_a))
        },
    }
}

/// The match arm decoding one variant from JSON fields `__dp_jfields`.
fn json_decode_arm(
    v: &Variant<'_>,
    name: &str,
    ty_name: &str,
    private: &TokenStream,
) -> TokenStream {
    let json = quote!(#private::json);
    let vars = vars(v);
    let build = construct(v, &vars);
    let accepted =
        std::iter::once(name.to_owned()).chain(v.attrs.aliases.iter().map(|a| a.value.clone()));
    let value = |i: usize, key: String, take: TokenStream| {
        let f = v.fields.iter().nth(i);
        let ty = f.map(|f| &f.ty);
        let fallback = match (&v.field_attrs[i].default, ty) {
            (Some(d), Some(ty)) => default_expr(&d.value, ty, d.span, private),
            _ => quote! {
                return #private::core::result::Result::Err(#json::missing_field(#key, #name, #ty_name))
            },
        };
        let var = &vars[i];
        quote! {
            let #var: #ty = match #take {
                #private::core::option::Option::Some(__dp_v) => __dp_v,
                #private::core::option::Option::None => #fallback,
            };
        }
    };
    let body = match v.fields {
        Fields::Unit => TokenStream::new(),
        Fields::Named(named) => {
            let takes = named.named.iter().enumerate().map(|(i, f)| {
                let key = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                value(
                    i,
                    key.clone(),
                    quote!(#json::take_named(&mut __dp_m, #key, #name, #ty_name)?),
                )
            });
            quote! {
                let mut __dp_m = #json::fields_object(__dp_jfields, #name, #ty_name)?;
                #(#takes)*
            }
        }
        Fields::Unnamed(unnamed) => {
            let takes = (0..unnamed.unnamed.len()).map(|i| {
                value(
                    i,
                    i.to_string(),
                    quote!(#json::take_item(&mut __dp_it, #i, #name, #ty_name)?),
                )
            });
            quote! {
                let mut __dp_it = #json::fields_array(__dp_jfields, #name, #ty_name)?.into_iter();
                #(#takes)*
            }
        }
    };
    quote! {
        #(#accepted)|* => {
            #body
            #private::core::result::Result::Ok(#build)
        }
    }
}
