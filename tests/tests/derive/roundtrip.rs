//! Property tests: events and snapshots of nested types round-trip exactly.

use std::collections::HashMap;

use dactor_persist::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Dot,
    Circle { r: f64 },
    Poly(Vec<(i32, i32)>),
    Group(Vec<Shape>),
}

#[derive(Debug, Clone, PartialEq, PersistentEvent)]
pub enum Event {
    Named { name: String, tags: Vec<String> },
    Big(u128, i128, i64, u64),
    Maybe(Option<Option<String>>),
    Drawn(Shape),
    Scores(HashMap<String, Vec<Option<u32>>>),
    Nothing,
}

#[derive(Debug, Default, EventSourced)]
#[persist(entity = "Canvas", event = Event, apply = Self::on)]
pub struct Canvas {
    #[persist(id)]
    id: String,
    names: Vec<String>,
    scores: HashMap<String, Vec<Option<u32>>>,
    shapes: Vec<Shape>,
    big: Option<(u128, i128)>,
    #[persist(sequence)]
    seq: SequenceId,
}

impl Canvas {
    fn on(&mut self, _e: &Event) {}
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Dot),
        (-1e9f64..1e9).prop_map(|r| Shape::Circle { r }),
        prop::collection::vec(any::<(i32, i32)>(), 0..5).prop_map(Shape::Poly),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Shape::Group)
    })
}

fn scores() -> impl Strategy<Value = HashMap<String, Vec<Option<u32>>>> {
    prop::collection::hash_map(
        ".*",
        prop::collection::vec(any::<Option<u32>>(), 0..4),
        0..4,
    )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (".*", prop::collection::vec("\\PC*", 0..4))
            .prop_map(|(name, tags)| Event::Named { name, tags }),
        any::<(u128, i128, i64, u64)>().prop_map(|(a, b, c, d)| Event::Big(a, b, c, d)),
        any::<Option<Option<String>>>().prop_map(Event::Maybe),
        shape().prop_map(Event::Drawn),
        scores().prop_map(Event::Scores),
        Just(Event::Nothing),
    ]
}

proptest! {
    #[test]
    fn events_round_trip(e in event()) {
        let bytes = e.encode().unwrap();
        prop_assert_eq!(Event::decode(&bytes).unwrap(), e.clone());
        let canvas = Canvas::default();
        prop_assert_eq!(canvas.deserialize_event(&canvas.serialize_event(&e).unwrap()).unwrap(), e);
    }

    #[test]
    fn snapshots_round_trip(
        names in prop::collection::vec("\\PC*", 0..5),
        scores in scores(),
        shapes in prop::collection::vec(shape(), 0..4),
        big in any::<Option<(u128, i128)>>(),
    ) {
        let c = Canvas { id: "c".into(), names, scores, shapes, big, seq: SequenceId(3) };
        let mut back = Canvas::default();
        back.restore_snapshot(c.snapshot_payload().unwrap()).unwrap();
        prop_assert_eq!(&back.names, &c.names);
        prop_assert_eq!(&back.scores, &c.scores);
        prop_assert_eq!(&back.shapes, &c.shapes);
        prop_assert_eq!(back.big, c.big);
        prop_assert_eq!(back.id, String::new());
        prop_assert_eq!(back.seq, SequenceId(0));
    }
}
