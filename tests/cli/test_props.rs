//! Property tests of the local engine: for random config.toml files and random declarations,
//! applying then planning again gives no changes, everything undeclared is unchanged, and the
//! result parses as TOML holding the declared values.

use proptest::prelude::*;
use runnerform::desired::{self, RefCheck};
use runnerform::local::LocalView;
use runnerform::local::expand::Environment;
use runnerform::local::state::State;
use runnerform::local::value::{Secrets, same};
use runnerform::plan::Action;
use runnerform::plan::{Inputs, plan};
use toml_edit::{DocumentMut, Item};

const EXECUTORS: &[&str] = &["shell", "docker", "kubernetes", "custom"];
const IMAGES: &[&str] = &["alpine:3", "rust:1.83", "ubuntu:24.04"];

#[derive(Debug, Clone)]
struct FileRunner {
    executor: usize,
    limit: Option<u8>,
    docker: Option<(usize, bool)>,
    comment: bool,
}

#[derive(Debug, Clone)]
struct Declared {
    executor: Option<usize>,
    limit: Option<u8>,
    image: Option<usize>,
    memory: bool,
    flag: Option<bool>,
    environment: Option<Vec<u8>>,
}

fn file_runner() -> impl Strategy<Value = FileRunner> {
    (
        0..EXECUTORS.len(),
        proptest::option::of(0u8..10),
        proptest::option::of((0..IMAGES.len(), any::<bool>())),
        any::<bool>(),
    )
        .prop_map(|(executor, limit, docker, comment)| FileRunner {
            executor,
            limit,
            docker,
            comment,
        })
}

fn declared() -> impl Strategy<Value = Declared> {
    (
        proptest::option::of(0..EXECUTORS.len()),
        proptest::option::of(0u8..10),
        proptest::option::of(0..IMAGES.len()),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::collection::vec(0u8..5, 0..3)),
    )
        .prop_map(
            |(executor, limit, image, memory, flag, environment)| Declared {
                executor,
                limit,
                image,
                memory,
                flag,
                environment,
            },
        )
}

fn config_text(indent: &str, concurrent: u8, runners: &[FileRunner]) -> String {
    let mut s = format!("# hand-written\nconcurrent = {concurrent}\ncheck_interval = 3 # keep\n");
    for (i, r) in runners.iter().enumerate() {
        s.push_str(&format!(
            "\n[[runners]]\n{indent}name = \"r{i}\"\n{indent}url = \"https://gitlab.example.com\"\n{indent}id = {}\n{indent}token = \"glrt-t1_tokentokentoken{i:04}\"\n{indent}executor = \"{}\"{}\n",
            i + 1,
            EXECUTORS[r.executor],
            if r.comment { " # chosen by hand" } else { "" }
        ));
        if let Some(l) = r.limit {
            s.push_str(&format!("{indent}limit = {l}\n"));
        }
        if let Some((img, privileged)) = r.docker {
            s.push_str(&format!(
                "{indent}[runners.docker]\n{indent}{indent}image = \"{}\"\n{indent}{indent}privileged = {privileged}\n",
                IMAGES[img]
            ));
        }
    }
    s
}

fn kdl_text(concurrent: Option<u8>, decls: &[(usize, Declared)]) -> String {
    let mut s = String::from("gitlab \"https://gitlab.example.com\"\nconfig \"config.toml\" {\n");
    if let Some(c) = concurrent {
        s.push_str(&format!("    concurrent {}\n", c.max(1)));
    }
    s.push_str("}\n");
    for (i, d) in decls {
        s.push_str(&format!("runner \"r{i}\" {{\n    instance\n"));
        s.push_str(&format!(
            "    executor \"{}\"\n",
            EXECUTORS[d.executor.unwrap_or(0)]
        ));
        if let Some(l) = d.limit {
            s.push_str(&format!("    limit {l}\n"));
        }
        if d.image.is_some() || d.memory {
            s.push_str("    docker {\n");
            if let Some(img) = d.image {
                s.push_str(&format!("        image \"{}\"\n", IMAGES[img]));
            }
            if d.memory {
                s.push_str("        memory \"4g\"\n");
            }
            s.push_str("    }\n");
        }
        if let Some(f) = d.flag {
            s.push_str(&format!(
                "    feature_flags {{\n        FF_TEST #{f}\n    }}\n"
            ));
        }
        if let Some(env) = &d.environment {
            let vals: Vec<String> = env.iter().map(|v| format!("\"V{v}=1\"")).collect();
            s.push_str(&format!("    environment {}\n", vals.join(" ")));
        }
        s.push_str("}\n");
    }
    s
}

fn view(text: &str) -> LocalView {
    LocalView::from_text(std::path::Path::new("config.toml"), text).expect("valid TOML")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn apply_then_plan_is_a_fixed_point_and_touches_only_declared_keys(
        indent in prop_oneof![Just(""), Just("  ")],
        concurrent in 1u8..20,
        runners in proptest::collection::vec(file_runner(), 1..4),
        decls in proptest::collection::vec(proptest::option::of(declared()), 4),
        new_concurrent in proptest::option::of(1u8..20),
    ) {
        let text = config_text(indent, concurrent, &runners);
        let decls: Vec<(usize, Declared)> = decls
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i < runners.len())
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let kdl_path = dir.path().join("runners.kdl");
        std::fs::write(&kdl_path, kdl_text(new_concurrent, &decls)).unwrap();
        let d = desired::read(&kdl_path, RefCheck::Settings).desired.expect("valid KDL");
        let secrets = Secrets::default();
        let env = Environment::default();

        let local0 = view(&text);
        let state0 = State { format: 1, ..State::default() };
        let p1 = plan(&Inputs { desired: &d, local: &local0, state: &state0, state_text: None,
            secrets: &secrets, remote: None, targets: &[], delete_unmanaged: false,
            env: &env, system_id: None }).unwrap();
        let text1 = p1.new_config.clone().unwrap_or_else(|| text.clone());
        let state1 = p1.state_after(&state0);
        let state1_text = state1.to_json();

        // The result parses and holds every declared value.
        let local1 = view(&text1);
        let doc1: DocumentMut = local1.document().unwrap();
        let inv = runnerform::keys::inventory();
        for r in &d.runners {
            let i: usize = r.name.value[1..].parse().unwrap();
            let entry = doc1["runners"][i].as_table().unwrap();
            for e in &r.body.settings.entries {
                let item = entry.get(&e.key).unwrap_or_else(|| panic!("{} missing", e.key));
                prop_assert!(same(item, &e.value, inv.runner().child(&e.key), &secrets),
                    "{}: {} does not hold the declared value", r.name.value, e.key);
            }
        }

        // Everything undeclared is as it was.
        prop_assert!(text1.contains("check_interval = 3 # keep"));
        prop_assert!(text1.starts_with("# hand-written\n"));
        let doc0 = local0.document().unwrap();
        for (i, _) in runners.iter().enumerate() {
            let before = doc0["runners"][i].as_table().unwrap();
            let after = doc1["runners"][i].as_table().unwrap();
            match decls.iter().find(|(j, _)| *j == i) {
                None => prop_assert_eq!(before.to_string(), after.to_string()),
                Some(_) => {
                    let declared = &d.runners.iter().find(|r| r.name.value == format!("r{i}")).unwrap().body.settings;
                    for (k, item) in before.iter() {
                        if declared.get(k).is_none() {
                            prop_assert_eq!(item.to_string(), after.get(k).map(Item::to_string).unwrap_or_default(), "{}", k);
                        }
                    }
                    prop_assert_eq!(&before["token"].to_string(), &after["token"].to_string());
                }
            }
        }

        // Planning again changes nothing.
        let p2 = plan(&Inputs { desired: &d, local: &local1, state: &state1,
            state_text: Some(&state1_text), secrets: &secrets, remote: None, targets: &[], delete_unmanaged: false,
            env: &env, system_id: None }).unwrap();
        prop_assert!(p2.new_config.is_none(), "second plan rewrites config.toml:\n{}", p2.diff);
        prop_assert!(p2.runners.iter().all(|r| r.steps.is_empty()), "second plan has steps");
        prop_assert!(p2.globals.is_empty());
        for r in &p2.runners {
            prop_assert!(matches!(r.action, Action::NoChange | Action::Unmanaged), "{:?}", r);
        }
    }
}
