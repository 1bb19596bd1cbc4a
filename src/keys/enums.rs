//! Keys whose values gitlab-runner accepts only from a fixed set.
//!
//! gitlab-runner itself mostly finds out at job time (or panics at register time, for the
//! executor); runnerform says so at validate time.

/// (config.toml path, allowed values). For arrays and string-or-array keys every element is
/// checked.
pub const ENUMS: &[(&str, &[&str])] = &[
    (
        "runners.executor",
        &[
            "shell",
            "custom",
            "instance",
            "docker",
            "docker-windows",
            "docker-autoscaler",
            "docker+machine",
            "kubernetes",
            "ssh",
            "parallels",
            "virtualbox",
        ],
    ),
    (
        "runners.shell",
        &["bash", "sh", "cmd", "pwsh", "powershell"],
    ),
    (
        "log_level",
        &[
            "panic", "fatal", "error", "warning", "warn", "info", "debug",
        ],
    ),
    ("log_format", &["runner", "text", "json"]),
    ("runners.cache.Type", &["s3", "gcs", "azure"]),
    (
        "runners.cache.s3.AuthenticationType",
        &["access-key", "iam"],
    ),
    ("runners.docker.pull_policy", PULL_POLICIES),
    ("runners.docker.allowed_pull_policies", PULL_POLICIES),
    ("runners.kubernetes.pull_policy", PULL_POLICIES),
    ("runners.kubernetes.allowed_pull_policies", PULL_POLICIES),
    (
        "runners.kubernetes.dns_policy",
        &[
            "none",
            "default",
            "cluster-first",
            "cluster-first-with-host-net",
        ],
    ),
];

const PULL_POLICIES: &[&str] = &["always", "never", "if-not-present"];

pub fn allowed_values(path: &str) -> Option<&'static [&'static str]> {
    ENUMS.iter().find(|(p, _)| *p == path).map(|(_, v)| *v)
}
