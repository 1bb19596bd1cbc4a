//! `show PLANFILE` renders a saved plan as `plan` rendered it, text and JSON, from the file
//! alone; anything that is not a saved plan is refused with a diagnostic.

use crate::common::TestEnvironment;
use crate::test_online::{FLEET, Host};

#[test]
fn show_renders_a_saved_plan_as_plan_did_in_text_and_json() {
    let h = Host::new(FLEET);
    assert_eq!(h.run(&["apply", "--yes", "--target", "inst"]).code, 0);
    // Drift on one runner, new runners, and a config.toml diff: every part of the view.
    h.declare(&FLEET.replace("tags \"a\" \"b\"", "tags \"a\" \"c\""));
    let plan = h.run(&["plan", "--out", "saved.json"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    let shown = h.run(&["show", "saved.json"]);
    assert_eq!(shown.code, 0, "{}", shown.combined());
    assert_eq!(shown.stderr, "");
    let rendered = plan
        .stdout
        .lines()
        .filter(|l| !l.starts_with("Saved the plan to"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(shown.stdout, rendered, "show is the plan's own view");
    assert!(
        shown
            .stdout
            .contains(r#"~ tags: ["a", "b"] -> ["a", "c"] (GitLab)"#),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("config.toml:\n--- "),
        "{}",
        shown.stdout
    );

    // -v shows the request bodies, as plan -v does.
    let verbose = h.run(&["-v", "show", "saved.json"]);
    assert!(
        verbose.stdout.contains("POST /user/runners {"),
        "{}",
        verbose.stdout
    );

    // Nothing but the file is needed: no KDL file, no config.toml, no GitLab.
    let elsewhere = TestEnvironment::new();
    std::fs::copy(
        h.env.path().join("saved.json"),
        elsewhere.path().join("p.json"),
    )
    .unwrap();
    let away = elsewhere.run(&["show", "p.json"]);
    assert_eq!(away.code, 0, "{}", away.combined());
    assert_eq!(away.stdout, shown.stdout);

    // --json is the document `plan --json` prints, valid against the plan schema.
    let json = h.run(&["show", "saved.json", "--json"]);
    assert_eq!(json.code, 0, "{}", json.combined());
    let again = h.run(&["plan", "--json"]);
    assert_eq!(
        json.stdout, again.stdout,
        "the same document as plan --json"
    );
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::root().join("schemas/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn show_renders_an_offline_saved_plan_with_its_diff() {
    let env = TestEnvironment::new();
    env.write(
        "config.toml",
        "concurrent = 1\n\n[[runners]]\n  name = \"old\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-abcdefghijklmnopqrstu\"\n  executor = \"shell\"\n",
    );
    env.write(
        "runners.kdl",
        "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\nconfig \"config.toml\" {\n    concurrent 4\n}\nrunner \"old\" {\n    instance\n    executor \"docker\"\n    docker {\n        image \"alpine:3\"\n    }\n}\n",
    );
    let plan = env.run(&["plan", "--offline", "--out", "p.json"]);
    assert_eq!(plan.code, 0, "{}", plan.combined());
    let out = env.run(&["show", "p.json"]);
    assert_eq!(out.code, 0, "{}", out.combined());
    insta::assert_snapshot!(out.stdout, @r#"
    Runners (config.toml, offline):
      > old: adopt
          found in config.toml as `old`; runnerform takes ownership without registering anything
          ~ executor: "shell" -> "docker"
          + docker.image: "alpine:3"
    Globals:
          ~ concurrent: 1 -> 4
    config.toml:
    old mode 0644
    new mode 0600 (config.toml will hold credentials: made private, as gitlab-runner writes it)
    --- config.toml
    +++ config.toml (planned)
    @@ -1,7 +1,9 @@
    -concurrent = 1
    +concurrent = 4
     
     [[runners]]
       name = "old"
       url = "https://gitlab.example.com"
       token = "glrt-*********************"
    -  executor = "shell"
    +  executor = "docker"
    +  [runners.docker]
    +    image = "alpine:3"
    Plan: 0 to create, 1 to adopt, 0 to update, 0 to delete.
    "#);
}

#[test]
fn show_refuses_what_is_not_a_saved_plan() {
    let env = TestEnvironment::new();
    env.write("runners.kdl", "runner \"a\" {\n    instance\n}\n");
    env.write(
        "status.json",
        "[{\"name\": \"a\", \"status\": \"online\"}]\n",
    );
    env.write(
        "old.json",
        "{\"format\": 1, \"fingerprints\": {}, \"runners\": []}\n",
    );
    for (file, says) in [
        (
            "runners.kdl",
            "runners.kdl is not a plan saved by `runnerform plan --out`: it is not JSON",
        ),
        (
            "status.json",
            "status.json is not a plan saved by `runnerform plan --out`: it has no plan format",
        ),
        (
            "old.json",
            "old.json has plan format 1, this runnerform reads format",
        ),
        ("missing.json", "cannot read plan missing.json"),
    ] {
        let out = env.run(&["show", file]);
        assert_eq!(out.code, 1, "{file}: {}", out.combined());
        assert_eq!(out.stdout, "", "{file}");
        assert!(out.stderr.contains(says), "{file}: {}", out.stderr);
        assert!(
            out.stderr.contains("runnerform::planfile"),
            "{}",
            out.stderr
        );
        // apply refuses the same files in the same words.
        let apply = env.run(&["apply", file]);
        assert_eq!(apply.code, 1);
        assert!(apply.stderr.contains(says), "{file}: {}", apply.stderr);
    }
    let out = env.run(&["show", "status.json"]);
    insta::assert_snapshot!(out.stderr, @r"
    runnerform::planfile

      × status.json is not a plan saved by `runnerform plan --out`: it has no plan format and no
      │ fingerprints
      help: save a plan with `runnerform plan --out FILE`
    ");
}
