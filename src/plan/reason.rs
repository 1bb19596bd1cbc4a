//! Why a runner gets its action, as a stable code beside the prose: a CI job matches on
//! these, never on the sentence (which may be reworded).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Declared, in neither config.toml nor GitLab: registered.
    NotRegistered,
    /// Declared with a registration token (legacy workflow).
    LegacyRegistration,
    /// An earlier apply registered it and stopped before writing its token.
    InterruptedRegistration,
    /// Declared with an existing runner token and not in config.toml.
    AdoptByToken,
    /// In config.toml under its declared name, not yet managed.
    FoundInConfig,
    /// Renamed with `renamed_from`.
    Renamed,
    /// config.toml differs from the declaration.
    ConfigDiffers,
    /// GitLab's attributes differ from the declaration.
    GitlabDiffers,
    /// Both differ.
    ConfigAndGitlabDiffer,
    /// Declared for another GitLab instance than the entry is registered with.
    UrlChanged,
    /// Declared for another owner (instance, group, project) than GitLab has.
    ScopeChanged,
    /// GitLab no longer has the runner (404/410).
    DeletedInGitlab,
    /// GitLab rejects the entry's token and the entry has no id.
    TokenRejected,
    /// The entry has neither an id nor a token.
    NoCredentials,
    /// A managed runner's entry was removed from config.toml.
    EntryRemoved,
    /// The token expires within the rotation window.
    TokenExpiring,
    /// The runner exists but GitLab rejects the entry's token (reset elsewhere).
    TokenResetElsewhere,
    /// Managed by runnerform and no longer declared.
    NoLongerDeclared,
    /// Removed from config.toml by an offline apply; deleted on GitLab now.
    DeferredDelete,
    /// Neither declared nor managed, and `--delete-unmanaged` was given.
    DeleteUnmanaged,
    /// Neither declared nor managed: left alone.
    Unmanaged,
    /// Matches the declaration.
    UpToDate,
}
