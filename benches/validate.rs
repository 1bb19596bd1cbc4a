//! Measures `validate` on a generated 1,000-runner file: the decoder in-process, and the
//! whole `runnerform validate` process. Prints the figures; asserts nothing about time.
//!
//! Run with: cargo bench --bench validate

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use runnerform::desired::{self, RefCheck};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNNERS: usize = 1000;
const ROUNDS: usize = 30;

fn generate() -> String {
    let mut kdl = String::from(
        "gitlab \"https://gitlab.example.com\" {\n    token env=\"GITLAB_TOKEN\"\n}\n\
         config {\n    concurrent 64\n}\n\
         defaults {\n    executor \"docker\"\n    docker {\n        image \"alpine:3.20\"\n        volumes \"/cache\"\n    }\n}\n\
         template \"rust\" {\n    docker { image \"rust:1.83\" }\n    feature_flags { FF_USE_FASTZIP #true }\n}\n",
    );
    for i in 0..RUNNERS {
        let _ = write!(
            kdl,
            "runner \"r{i:04}\" template=\"rust\" {{\n    project \"acme/app-{}\"\n    tags \"docker\" \"pool-{}\"\n    run_untagged #false\n    limit 2\n    docker {{\n        memory \"4g\"\n        cpus \"2\"\n        volumes \"/cache\" \"/certs/{i}\"\n    }}\n    cache {{\n        Type \"s3\"\n        s3 {{ BucketName \"cache-{i}\" }}\n    }}\n}}\n",
            i % 50,
            i % 7
        );
    }
    kdl
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[0], samples[samples.len() / 2])
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runners.kdl");
    let text = generate();
    std::fs::write(&path, &text).unwrap();
    // SAFETY: set before any thread is spawned.
    unsafe { std::env::set_var("GITLAB_TOKEN", "bench-value") };

    let mut lib = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let loaded = desired::read(&path, RefCheck::Require);
        lib.push(t.elapsed());
        assert_eq!(loaded.desired.expect("valid").runners.len(), RUNNERS);
    }
    let mut proc = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_runnerform"))
            .args(["validate", "-q", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        proc.push(t.elapsed());
        assert!(out.status.success());
    }
    let (lmin, lmed) = stats(lib);
    let (pmin, pmed) = stats(proc);
    println!(
        "validate, {RUNNERS} runners ({} KiB of KDL), {ROUNDS} rounds",
        text.len() / 1024
    );
    println!("  decode+check in-process: min {lmin:.1?}, median {lmed:.1?}");
    println!("  runnerform validate process: min {pmin:.1?}, median {pmed:.1?}");
}
