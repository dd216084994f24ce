//! Generated models (de)serialize the JSON their schemas describe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue::serde_json::{self, json};
use klue_codegen_check::corpus_openapi31::petstore::models as pet;
use klue_codegen_check::edge_cases::edge::models as edge;

#[test]
fn discriminated_union_dispatches_on_the_tag_and_keeps_it() {
    let dog = json!({
        "id": "0b8f3a6e-6f7e-4a43-9d6c-9d1c1c9f5e11",
        "name": "Rex",
        "category": "dog",
        "kind": "dog",
        "barkVolume": 7,
        "birthDate": "2020-02-29",
        "createdAt": "2024-01-02T03:04:05Z",
    });
    let pet: pet::Pet = serde_json::from_value(dog.clone()).unwrap();
    let pet::Pet::Dog(d) = &pet else {
        panic!("not a dog: {pet:?}")
    };
    assert_eq!(d.bark_volume, Some(7));
    assert_eq!(
        d.birth_date.map(|b| b.to_string()).as_deref(),
        Some("2020-02-29")
    );
    assert_eq!(serde_json::to_value(&pet).unwrap(), dog);

    let unknown = serde_json::from_value::<pet::Pet>(json!({"kind": "cow"})).unwrap_err();
    assert!(unknown.to_string().contains("kind"), "{unknown}");
}

#[test]
fn untagged_unions_pick_the_most_specific_shape() {
    let rect: edge::Shape = serde_json::from_value(json!({"width": 1.0, "height": 2.0})).unwrap();
    assert!(matches!(rect, edge::Shape::Rect(_)), "{rect:?}");
    let circle: edge::Shape = serde_json::from_value(json!({"radius": 1.5})).unwrap();
    assert!(matches!(circle, edge::Shape::Circle(_)), "{circle:?}");

    let n: edge::Value = serde_json::from_value(json!(3)).unwrap();
    assert_eq!(n, edge::Value::Integer(3));
    let f: edge::Value = serde_json::from_value(json!(3.5)).unwrap();
    assert_eq!(f, edge::Value::Number(3.5));
    let s: edge::Value = serde_json::from_value(json!("x")).unwrap();
    assert_eq!(s, edge::Value::String("x".into()));
}

#[test]
fn keywords_nulls_maps_and_binary_round_trip() {
    let thing = json!({
        "type": "t",
        "self": "s",
        "value": [ "a" ],
        "labels": {"k": "v"},
        "maybe": null,
        "state": "on",
        "blob": "aGVsbG8=",
        "next": {"type": "u", "self": "s2", "value": true, "labels": {}},
        "combined": {"radius": 2.0, "extra": "e"},
        "unknownCount": 5,
    });
    let t: edge::Thing = serde_json::from_value(thing).unwrap();
    assert_eq!(t.r#type, "t");
    assert_eq!(t.self_, "s");
    assert_eq!(t.maybe, None);
    assert_eq!(t.state, Some(edge::ThingState::On));
    assert_eq!(
        t.blob.as_ref().map(|b| b.0.clone()),
        Some(b"hello".to_vec())
    );
    assert_eq!(t.next.as_ref().map(|n| n.r#type.as_str()), Some("u"));
    let combined = t.combined.as_ref().unwrap();
    assert!(matches!(combined.shape, edge::Shape::Circle(_)));
    assert_eq!(combined.extra.as_deref(), Some("e"));
    assert_eq!(t.additional_properties.get("unknownCount"), Some(&5));

    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(back["self"], "s");
    assert!(
        back.get("maybe").is_none(),
        "absent options are not serialized: {back}"
    );
    assert_eq!(back["unknownCount"], 5);
}
