//! Unit tests of the allow-list filter, and the properties every filtered body must have.
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::path;

fn paths(texts: &[&str]) -> Vec<FieldPath> {
    texts.iter().map(|t| FieldPath::parse(t).unwrap()).collect()
}

fn tree(texts: &[&str]) -> AllowTree {
    AllowTree::new(&paths(texts))
}

fn set(texts: &[&str]) -> BTreeSet<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

/// A repairs job as the housing system returns it.
fn job() -> Value {
    json!({
        "id": "J1",
        "status": "scheduled",
        "priority": "urgent",
        "description": "Boiler not igniting",
        "contractor_id": "acme-repairs",
        "appointment": {"date": "2025-03-04", "slot": "am"},
        "property": {
            "address": {"line1": "12 Minster Yard", "postcode": "LN2 1PX"},
            "uprn": "100030000001",
            "asbestos_register": [{"location": "loft"}]
        },
        "tenant": {
            "id": "T-4471",
            "name": "Ada Lovelace",
            "phone": "07700 900123",
            "email": "ada@example.org",
            "date_of_birth": "1985-12-10",
            "ni_number": "QQ123456C",
            "access_needs": [
                {"code": "WCH", "description": "Uses a wheelchair; ring twice"},
                {"code": "DEAF", "description": "Text on arrival", "notes": "hearing loop"}
            ],
            "caution_markers": [
                {"category": "dog", "instruction": "Large dog, ask tenant to secure",
                 "detail": "bit a surveyor 2021", "tenant_informed": true}
            ],
            "benefits": {"universal_credit": true, "housing_benefit_ref": "HB-99812"},
            "arrears": 412.5
        }
    })
}

/// The allow list of the example's job route, as `tests/fixtures` has it.
fn repairs() -> AllowTree {
    let allow = crate::test_util::example_allow();
    tree(&allow.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The values of a body that a recipient must not see, for a text search of the output.
const SECRETS: &[&str] = &[
    "acme-repairs",
    "100030000001",
    "loft",
    "T-4471",
    "1985-12-10",
    "QQ123456C",
    "WCH",
    "DEAF",
    "hearing loop",
    "Large dog",
    "bit a surveyor",
    "HB-99812",
    "412.5",
    "contractor_id",
    "date_of_birth",
    "caution_markers",
    "benefits",
    "arrears",
];

#[test]
fn repairs_contractor_sees_only_its_fields() {
    let filtered = allow(&repairs(), &job());
    assert_eq!(
        filtered.body,
        json!({
            "id": "J1",
            "status": "scheduled",
            "priority": "urgent",
            "description": "Boiler not igniting",
            "appointment": {"date": "2025-03-04", "slot": "am"},
            "property": {"address": {"line1": "12 Minster Yard", "postcode": "LN2 1PX"}},
            "tenant": {
                "name": "Ada Lovelace",
                "phone": "07700 900123",
                "email": "ada@example.org",
                "access_needs": [
                    {"description": "Uses a wheelchair; ring twice"},
                    {"description": "Text on arrival"}
                ]
            }
        })
    );
    let text = serde_json::to_string(&filtered.body).unwrap();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn disclosed_names_every_leaf_sent_without_indexes() {
    let filtered = allow(&repairs(), &job());
    assert_eq!(
        filtered.disclosed,
        set(&[
            "appointment.date",
            "appointment.slot",
            "description",
            "id",
            "priority",
            "property.address.line1",
            "property.address.postcode",
            "status",
            "tenant.access_needs[].description",
            "tenant.email",
            "tenant.name",
            "tenant.phone",
        ])
    );
}

#[test]
fn withheld_names_the_top_of_each_withheld_subtree_once() {
    let filtered = allow(&repairs(), &job());
    assert_eq!(
        filtered.withheld,
        set(&[
            "contractor_id",
            "property.asbestos_register",
            "property.uprn",
            "tenant.access_needs[].code",
            "tenant.access_needs[].notes",
            "tenant.arrears",
            "tenant.benefits",
            "tenant.caution_markers",
            "tenant.date_of_birth",
            "tenant.id",
            "tenant.ni_number",
        ])
    );
    assert!(filtered.disclosed.is_disjoint(&filtered.withheld));
}

#[test]
fn naming_a_key_passes_its_whole_subtree() {
    let body = json!({"appointment": {"date": "d", "slot": {"from": 9, "to": 12}, "tags": [],
        "notes": {}, "visits": [{"n": 1}, {"n": 2}]}});
    let filtered = allow(&tree(&["appointment"]), &body);
    assert_eq!(filtered.body, body);
    assert_eq!(
        filtered.disclosed,
        set(&[
            "appointment.date",
            "appointment.notes",
            "appointment.slot.from",
            "appointment.slot.to",
            "appointment.tags",
            "appointment.visits[].n",
        ])
    );
    assert!(filtered.withheld.is_empty());
}

#[test]
fn a_granted_empty_container_is_a_disclosed_leaf() {
    let body = json!({"benefits": [], "flags": {}});
    let filtered = allow(&tree(&["benefits", "flags"]), &body);
    assert_eq!(filtered.body, body);
    assert_eq!(filtered.disclosed, set(&["benefits", "flags"]));
}

#[test]
fn an_object_without_allowed_children_becomes_empty() {
    let body = json!({"tenant": {"id": "T1", "date_of_birth": "1990-01-01"}});
    let filtered = allow(&tree(&["tenant.name"]), &body);
    assert_eq!(filtered.body, json!({"tenant": {}}));
    assert!(filtered.disclosed.is_empty());
    assert_eq!(
        filtered.withheld,
        set(&["tenant.date_of_birth", "tenant.id"])
    );
}

#[test]
fn absent_allowed_fields_are_simply_absent() {
    let filtered = allow(&tree(&["tenant.name", "status"]), &json!({"id": 1}));
    assert_eq!(filtered.body, json!({}));
    assert_eq!(filtered.withheld, set(&["id"]));
}

#[test]
fn each_filters_every_element_and_drops_mismatched_ones() {
    let body = json!({"needs": [
        {"code": "A", "description": "ramp"},
        "free text about the tenant",
        42,
        null,
        [{"description": "nested"}],
        {"code": "B"}
    ]});
    let filtered = allow(&tree(&["needs[].description"]), &body);
    assert_eq!(
        filtered.body,
        json!({"needs": [{"description": "ramp"}, {}]})
    );
    assert_eq!(filtered.disclosed, set(&["needs[].description"]));
    assert_eq!(filtered.withheld, set(&["needs[]", "needs[].code"]));
    let text = serde_json::to_string(&filtered.body).unwrap();
    assert!(!text.contains("free text") && !text.contains("nested") && !text.contains("42"));
}

#[test]
fn each_as_last_step_passes_every_element_whole() {
    let body = json!({"markers": [{"category": "dog"}, "x", 3], "other": 1});
    let filtered = allow(&tree(&["markers[]"]), &body);
    assert_eq!(
        filtered.body,
        json!({"markers": [{"category": "dog"}, "x", 3]})
    );
    assert_eq!(
        filtered.disclosed,
        set(&["markers[]", "markers[].category"])
    );
    assert_eq!(filtered.withheld, set(&["other"]));
}

#[test]
fn an_array_where_keys_are_expected_is_withheld() {
    // Paths never index arrays: `tenant.name` does not reach into a list of tenants.
    let body = json!({"tenant": [{"name": "Ada", "id": "T1"}, {"name": "Bob"}]});
    let filtered = allow(&tree(&["tenant.name"]), &body);
    assert_eq!(filtered.body, json!({}));
    assert_eq!(filtered.withheld, set(&["tenant"]));
    assert!(filtered.disclosed.is_empty());
}

#[test]
fn an_object_where_each_is_expected_is_withheld() {
    let body = json!({"needs": {"description": "ramp", "code": "A"}});
    let filtered = allow(&tree(&["needs[].description"]), &body);
    assert_eq!(filtered.body, json!({}));
    assert_eq!(filtered.withheld, set(&["needs"]));
}

#[test]
fn a_scalar_where_fields_are_expected_is_withheld() {
    let body = json!({"tenant": "Ada Lovelace, 1985-12-10", "needs": "ramp"});
    let filtered = allow(&tree(&["tenant.name", "needs[].description"]), &body);
    assert_eq!(filtered.body, json!({}));
    assert_eq!(filtered.withheld, set(&["needs", "tenant"]));
}

#[test]
fn a_node_naming_keys_and_each_accepts_both_shapes() {
    let t = tree(&["x.name", "x[].name"]);
    assert_eq!(
        allow(&t, &json!({"x": {"name": 1, "y": 2}})).body,
        json!({"x": {"name": 1}})
    );
    assert_eq!(
        allow(&t, &json!({"x": [{"name": 1, "y": 2}]})).body,
        json!({"x": [{"name": 1}]})
    );
    assert_eq!(allow(&t, &json!({"x": "flat"})).body, json!({}));
}

#[test]
fn an_array_body_starts_its_paths_with_each() {
    let body = json!([
        {"id": "J1", "tenant": {"name": "Ada"}},
        {"id": "J2", "tenant": {"name": "Bob"}},
        "stray"
    ]);
    let filtered = allow(&tree(&["[].id"]), &body);
    assert_eq!(filtered.body, json!([{"id": "J1"}, {"id": "J2"}]));
    assert_eq!(filtered.disclosed, set(&["[].id"]));
    assert_eq!(filtered.withheld, set(&["[]", "[].tenant"]));
}

#[test]
fn an_array_body_without_each_entries_keeps_no_element() {
    let filtered = allow(&tree(&["id"]), &json!([{"id": 1}, 2]));
    assert_eq!(filtered.body, json!([]));
    assert_eq!(filtered.withheld, set(&["[]"]));
}

#[test]
fn an_object_body_where_each_is_expected_keeps_no_key() {
    let filtered = allow(&tree(&["[].id"]), &json!({"id": 1, "name": "Ada"}));
    assert_eq!(filtered.body, json!({}));
    assert_eq!(filtered.withheld, set(&["id", "name"]));
}

#[test]
fn a_scalar_body_becomes_null() {
    for body in [json!("Ada Lovelace"), json!(7), json!(true), Value::Null] {
        let filtered = allow(&tree(&["id"]), &body);
        assert_eq!(filtered.body, Value::Null);
        assert_eq!(filtered.withheld, set(&[""]));
        assert!(filtered.disclosed.is_empty());
    }
}

#[test]
fn nested_arrays_use_one_each_per_level() {
    let body = json!({"a": [[{"b": 1, "c": 2}], [{"b": 3}, 4]]});
    let filtered = allow(&tree(&["a[][].b"]), &body);
    assert_eq!(filtered.body, json!({"a": [[{"b": 1}], [{"b": 3}]]}));
    assert_eq!(filtered.disclosed, set(&["a[][].b"]));
    assert_eq!(filtered.withheld, set(&["a[][]", "a[][].c"]));
}

#[test]
fn keys_rules_cannot_spell_are_withheld_under_a_quoted_name() {
    let body = json!({"tenant": {"name": "Ada", "name.secret": "x", "": "y", "[]": "z"},
        "tenant.name": "spoof"});
    let filtered = allow(&tree(&["tenant.name"]), &body);
    assert_eq!(filtered.body, json!({"tenant": {"name": "Ada"}}));
    assert_eq!(
        filtered.withheld,
        set(&[
            "[\"tenant.name\"]",
            "tenant[\"\"]",
            "tenant[\"[]\"]",
            "tenant[\"name.secret\"]"
        ])
    );
    assert_eq!(filtered.disclosed, set(&["tenant.name"]));
    // Under a whole grant such keys are sent, and named unambiguously.
    let filtered = allow(&tree(&["tenant"]), &body);
    assert!(filtered.disclosed.contains("tenant[\"name.secret\"]"));
    assert_eq!(filtered.withheld, set(&["[\"tenant.name\"]"]));
}

#[test]
fn an_empty_tree_withholds_everything() {
    let t = AllowTree::new(&[]);
    assert!(t.is_empty());
    let filtered = allow(&t, &job());
    assert_eq!(filtered.body, json!({}));
    assert!(filtered.disclosed.is_empty());
    assert_eq!(filtered.withheld.len(), job().as_object().unwrap().len());
}

#[test]
fn union_adds_paths_and_leaves_the_base_alone() {
    let base = repairs();
    let extra = paths(&[
        "tenant.caution_markers[].category",
        "tenant.caution_markers[].instruction",
    ]);
    let wider = base.union(&extra);
    let filtered = allow(&wider, &job());
    assert_eq!(
        filtered.body["tenant"]["caution_markers"],
        json!([{"category": "dog", "instruction": "Large dog, ask tenant to secure"}])
    );
    assert!(filtered
        .withheld
        .contains("tenant.caution_markers[].detail"));
    assert!(!base.is_empty());
    assert!(allow(&base, &job())
        .withheld
        .contains("tenant.caution_markers"));
}

#[test]
fn an_entry_under_a_granted_key_changes_nothing() {
    let body = json!({"a": {"b": 1, "c": 2}});
    for order in [["a", "a.b"], ["a.b", "a"]] {
        let t = tree(&order);
        let (filtered, fields) = allow_explained(&t, &body);
        assert_eq!(filtered.body, body, "{order:?}");
        assert_eq!(fields["a.c"].why, "allow \"a\"", "{order:?}");
    }
}

#[test]
fn explain_gives_a_decision_for_every_upstream_path() {
    let t = repairs();
    let (filtered, fields) = allow_explained(&t, &job());
    assert_eq!(filtered, allow(&t, &job()));
    let decided = |path: &str| fields.get(path).cloned().unwrap();
    assert_eq!(
        decided("tenant.name"),
        Decision {
            disclosed: true,
            why: "allow \"tenant.name\"".to_owned()
        }
    );
    assert_eq!(decided("appointment.slot").why, "allow \"appointment\"");
    assert_eq!(decided("appointment").why, "allow \"appointment\"");
    assert_eq!(
        decided("tenant"),
        Decision {
            disclosed: true,
            why: "holds allowed fields".to_owned()
        }
    );
    assert_eq!(
        decided("tenant.date_of_birth"),
        Decision {
            disclosed: false,
            why: "not in the allow list".to_owned()
        }
    );
    assert_eq!(
        decided("tenant.benefits.housing_benefit_ref"),
        Decision {
            disclosed: false,
            why: "inside withheld tenant.benefits".to_owned()
        }
    );
    assert_eq!(
        decided("tenant.caution_markers[].detail").why,
        "inside withheld tenant.caution_markers"
    );
    assert!(!decided("tenant.access_needs[].code").disclosed);
    assert!(decided("tenant.access_needs[].description").disclosed);
    // Every upstream path has a decision, and decisions agree with the sets.
    let mut upstream = BTreeSet::new();
    let mut buf = RuleFormBuf::new();
    each_inner_path(&job(), &mut buf, &Removed::default(), &mut |p, _| {
        upstream.insert(p.to_owned());
    });
    assert_eq!(fields.keys().cloned().collect::<BTreeSet<_>>(), upstream);
    for path in &filtered.disclosed {
        assert!(fields[path].disclosed, "{path}");
    }
    for path in &filtered.withheld {
        assert!(!fields[path].disclosed, "{path}");
    }
}

#[test]
fn explain_reports_shape_mismatches() {
    let (_, fields) = allow_explained(&tree(&["tenant.name"]), &json!({"tenant": ["Ada"]}));
    assert_eq!(
        fields["tenant"].why,
        "the allow list names fields inside an object here, upstream sent an array"
    );
    assert_eq!(fields["tenant[]"].why, "inside withheld tenant");
    let (_, fields) = allow_explained(&tree(&["x[].a"]), &json!({"x": {"a": 1}}));
    assert_eq!(
        fields["x"].why,
        "the allow list names fields inside an array here, upstream sent an object"
    );
    let (_, fields) = allow_explained(&tree(&["id"]), &json!("bare"));
    assert_eq!(fields[""].why, "the body is not an object or an array");
}

#[test]
fn explain_reports_a_path_disclosed_in_any_element_as_disclosed() {
    let body = json!({"x": [{"b": "scalar"}, {"b": {"c": 1}}]});
    let (filtered, fields) = allow_explained(&tree(&["x[].b.c"]), &body);
    assert_eq!(filtered.body, json!({"x": [{}, {"b": {"c": 1}}]}));
    assert!(fields["x[].b"].disclosed);
    assert_eq!(filtered.withheld, set(&["x[].b"]));
    assert_eq!(filtered.disclosed, set(&["x[].b.c"]));
}

#[test]
fn subjects_reads_the_upstream_body() {
    assert_eq!(subjects(&paths(&["tenant.id"]), &job()), vec!["T-4471"]);
    let body = json!([
        {"tenant": {"id": "T2"}, "household": [{"id": 7}, {"id": "T2"}, {"id": null}]},
        {"tenant": {"id": "T1"}, "household": [{"id": 1.5}, {"id": {"x": 1}}, {"id": [1]}]},
        {"tenant": "not an object"},
        "stray"
    ]);
    assert_eq!(
        subjects(&paths(&["[].tenant.id", "[].household[].id"]), &body),
        vec!["1.5", "7", "T1", "T2"]
    );
    assert!(subjects(&paths(&["missing.id"]), &body).is_empty());
    assert!(subjects(&[], &job()).is_empty());
}

// === properties ===

/// Keys from a small alphabet, so that random bodies and random grants meet; `a.b` and the
/// empty key stand for upstream keys rules cannot spell.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["a.b", "", "[]"]).prop_map(str::to_owned),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(|n| json!(n)),
        prop::sample::select(vec!["x", "y", ""]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = FieldPath> {
    let segment = prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(|k| Segment::Key(k.to_owned())),
        1 => Just(Segment::Each),
    ];
    prop::collection::vec(segment, 1..5).prop_map(|segments| {
        FieldPath::parse(&path::render(&segments)).expect("rendered plain keys parse")
    })
}

fn arb_allow() -> impl Strategy<Value = Vec<FieldPath>> {
    prop::collection::vec(arb_path(), 0..6)
}

/// Every leaf of `value` below the root, with whether it is a scalar. Written apart from
/// the filter's own walk so that the properties do not trust it.
fn leaves(value: &Value, at: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, bool)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                at.push(Segment::Key(key.clone()));
                leaves(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            at.push(Segment::Each);
            for child in items {
                leaves(child, at, out);
            }
            at.pop();
        }
        Value::Object(_) | Value::Array(_) => {
            if !at.is_empty() {
                out.push((at.clone(), false));
            }
        }
        _ => out.push((at.clone(), true)),
    }
}

fn under_any(path: &[Segment], allow: &[FieldPath]) -> bool {
    allow.iter().any(|a| path.starts_with(a.segments()))
}

fn prefix_of_any(path: &[Segment], allow: &[FieldPath]) -> bool {
    allow.iter().any(|a| a.segments().starts_with(path))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn output_holds_no_path_outside_the_grant(body in arb_json(), allow_list in arb_allow()) {
        let filtered = allow(&AllowTree::new(&allow_list), &body);
        if !(body.is_object() || body.is_array()) {
            prop_assert_eq!(&filtered.body, &Value::Null);
        }
        let mut found = Vec::new();
        leaves(&filtered.body, &mut Vec::new(), &mut found);
        for (path, scalar) in &found {
            if filtered.body.is_null() {
                break;
            }
            // A scalar is sent only under a grant; an empty container also as the
            // structure leading to one (`tenant: {}` for `tenant.name`).
            prop_assert!(
                under_any(path, &allow_list) || (!scalar && prefix_of_any(path, &allow_list)),
                "{} not granted by {:?}", path::render(path), allow_list
            );
        }
        // `disclosed` is exactly the output's leaves under a grant.
        let want: BTreeSet<String> = found
            .iter()
            .filter(|(path, _)| under_any(path, &allow_list))
            .map(|(path, _)| path::render(path))
            .collect();
        prop_assert_eq!(&filtered.disclosed, &want);
    }

    #[test]
    fn filtering_twice_changes_nothing(body in arb_json(), allow_list in arb_allow()) {
        let tree = AllowTree::new(&allow_list);
        let once = allow(&tree, &body);
        let twice = allow(&tree, &once.body);
        prop_assert_eq!(&twice.body, &once.body);
        // Nothing is left to withhold, except a scalar body, which stays `null`.
        if once.body.is_null() {
            prop_assert_eq!(&twice.withheld, &once.withheld);
        } else {
            prop_assert!(twice.withheld.is_empty(), "{:?}", twice.withheld);
        }
        prop_assert_eq!(&twice.disclosed, &once.disclosed);
    }

    #[test]
    fn disclosed_and_withheld_are_disjoint_and_granted(
        body in arb_json(),
        allow_list in arb_allow(),
    ) {
        let tree = AllowTree::new(&allow_list);
        let (filtered, fields) = allow_explained(&tree, &body);
        prop_assert_eq!(&filtered, &allow(&tree, &body));
        prop_assert!(filtered.disclosed.is_disjoint(&filtered.withheld));
        for text in &filtered.disclosed {
            // Under a whole grant a key may be one rules cannot spell, so compare text: the
            // entry, then the end of the path or the start of its next step.
            let granted = allow_list.iter().map(ToString::to_string).any(|entry| {
                text.strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            });
            prop_assert!(granted, "{} not granted by {:?}", text, allow_list);
            prop_assert!(fields[text].disclosed);
        }
        for text in &filtered.withheld {
            prop_assert!(fields.contains_key(text), "{}", text);
        }
    }

    #[test]
    fn never_panics_on_any_body(body in arb_json(), allow_list in arb_allow()) {
        let tree = AllowTree::new(&allow_list);
        let _ = allow(&tree, &body);
        let _ = allow_explained(&tree, &body);
        let _ = subjects(&allow_list, &body);
    }
}
