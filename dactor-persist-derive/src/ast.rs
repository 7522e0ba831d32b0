//! The derive input as a typed model: the struct or enum with its parsed
//! `#[persist(..)]` attributes. Code generation reads only this model.

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Type};

use crate::attr::{
    self, Container, Derive, Errors, EventContainer, FieldAttrs, FieldPlace, VariantAttrs,
};

/// A struct deriving `EventSourced` or `DurableState`.
pub struct Actor<'a> {
    pub derive: Derive,
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: Container,
    pub fields: Vec<Field<'a>>,
}

/// One named field of an actor struct.
pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
}

impl Field<'_> {
    /// The name the stored layout records: `#[persist(name = "..")]` or the
    /// field's own.
    pub fn stored_name(&self) -> String {
        self.attrs
            .name
            .as_ref()
            .map_or_else(|| self.ident.to_string(), |n| n.value.clone())
    }

    /// Stored in snapshots and states: not the id, the sequence or skipped.
    pub fn is_stored(&self) -> bool {
        self.attrs.id.is_none() && self.attrs.sequence.is_none() && self.attrs.skip.is_none()
    }
}

impl<'a> Actor<'a> {
    pub fn from_input(input: &'a DeriveInput, derive: Derive, errors: &mut Errors) -> Option<Self> {
        let attrs = attr::parse_container(&input.attrs, derive, errors);
        let named = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => Some(named),
                Fields::Unnamed(_) | Fields::Unit => {
                    errors.push(
                        input.ident.span(),
                        format!(
                            "#[derive({})] needs a struct with named fields, so that the id, the sequence and the stored fields can be told apart",
                            derive.name()
                        ),
                    );
                    None
                }
            },
            Data::Enum(e) => {
                errors.push(
                    e.enum_token.span(),
                    format!(
                        "#[derive({})] is for the actor struct, not an enum; to make an enum of events, use #[derive(PersistentEvent)]",
                        derive.name()
                    ),
                );
                None
            }
            Data::Union(u) => {
                errors.push(
                    u.union_token.span(),
                    format!(
                        "#[derive({})] is for structs with named fields, not unions",
                        derive.name()
                    ),
                );
                None
            }
        }?;
        let fields = named
            .named
            .iter()
            .filter_map(|f| {
                let place = match derive {
                    Derive::StoredState => FieldPlace::Layout,
                    _ => FieldPlace::Actor,
                };
                let attrs = attr::parse_field(&f.attrs, place, errors);
                Some(Field {
                    ident: f.ident.as_ref()?,
                    ty: &f.ty,
                    attrs,
                })
            })
            .collect();
        Some(Actor {
            derive,
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            fields,
        })
    }

    pub fn id_field(&self) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.attrs.id.is_some())
    }

    pub fn sequence_field(&self) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.attrs.sequence.is_some())
    }

    pub fn stored_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.is_stored())
    }

    /// The stored fields with a default, in declaration order: bit `i` of a
    /// layout's `present` mask is the `i`-th of them.
    pub fn defaulted_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.stored_fields().filter(|f| f.attrs.default.is_some())
    }
}

/// An enum deriving `PersistentEvent`.
pub struct Event<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: EventContainer,
    pub variants: Vec<Variant<'a>>,
}

/// One variant of an event enum.
pub struct Variant<'a> {
    pub ident: &'a Ident,
    pub fields: &'a Fields,
    pub attrs: VariantAttrs,
    /// Each field's `#[persist(..)]`, in declaration order.
    pub field_attrs: Vec<FieldAttrs>,
}

impl Variant<'_> {
    /// The stable name written to the journal.
    pub fn name(&self) -> String {
        self.attrs
            .name
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_else(|| self.ident.to_string())
    }
}

impl<'a> Event<'a> {
    pub fn from_input(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        let attrs = attr::parse_event_container(&input.attrs, errors);
        let data = match &input.data {
            Data::Enum(e) => e,
            Data::Struct(s) => {
                errors.push(
                    s.struct_token.span(),
                    "#[derive(PersistentEvent)] is for an enum of events, one variant per kind of event; wrap this struct in an enum variant",
                );
                return None;
            }
            Data::Union(u) => {
                errors.push(
                    u.union_token.span(),
                    "#[derive(PersistentEvent)] is for enums, not unions",
                );
                return None;
            }
        };
        let variants = data
            .variants
            .iter()
            .map(|v| Variant {
                ident: &v.ident,
                fields: &v.fields,
                attrs: attr::parse_variant(&v.attrs, errors),
                field_attrs: v
                    .fields
                    .iter()
                    .map(|f| attr::parse_field(&f.attrs, FieldPlace::Variant, errors))
                    .collect(),
            })
            .collect();
        Some(Event {
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            variants,
        })
    }
}
