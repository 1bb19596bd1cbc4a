//! schemas/language.md is generated from the decoder's tables and must not go stale.

use crate::common::root;

#[test]
fn reference_is_up_to_date() {
    let path = root().join("schemas/language.md");
    let fresh = runnerform::reference::markdown();
    if std::env::var_os("RUNNERFORM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "schemas/language.md is stale: regenerate it with RUNNERFORM_BLESS=1 cargo test --test cli reference"
    );
}

#[test]
fn reference_lists_every_key_and_node() {
    let text = runnerform::reference::markdown();
    let inv = runnerform::keys::inventory();
    for k in inv.root.descendants() {
        if k.name == "runners" {
            continue;
        }
        assert!(
            text.contains(&format!("| `{}` |", k.display_path())),
            "{}",
            k.path
        );
    }
    for n in runnerform::desired::nodes::NODES {
        assert!(text.contains(&format!("| `{}` |", n.name)), "{}", n.name);
    }
}
