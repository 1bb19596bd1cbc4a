//! Reading KDL files: the entry file and everything it includes.
//!
//! `include "path"` at the top level splices another file's top-level nodes in its place.
//! Paths are relative to the including file. A file is read once even when several files
//! include it (a fleet's shared defaults), and a cycle is an error. The entry file `-` is
//! read from stdin (a provisioning script can pipe it in); what it includes is relative to the
//! current directory.

use std::path::{Path, PathBuf};

use kdl::KdlNode;

use crate::diag::{FileId, Loc, Problem, Problems, Sources};

/// The top-level nodes of all files, includes spliced in place.
pub struct Files {
    pub sources: Sources,
    pub nodes: Vec<(FileId, KdlNode)>,
}

/// The entry file name that means stdin.
pub const STDIN: &str = "-";

/// The most read from stdin: far beyond any fleet, and a bound on a pipe that never ends.
const STDIN_LIMIT: u64 = 64 << 20;

pub fn load(entry: &Path, problems: &mut Problems) -> Option<Files> {
    let from_stdin = entry == Path::new(STDIN);
    let read = if from_stdin {
        read_stdin()
    } else {
        std::fs::read_to_string(entry).map_err(|e| io_reason(&e))
    };
    let text = match read {
        Ok(t) => t,
        Err(reason) => {
            let name = if from_stdin {
                "stdin".to_string()
            } else {
                entry.display().to_string()
            };
            problems.push(
                Problem::error("io", format!("cannot read {name}: {reason}"))
                    .help("pass the file with -f FILE (or -f - for stdin), or set RUNNERFORM_FILE"),
            );
            return None;
        }
    };
    let display = if from_stdin {
        "<stdin>".to_string()
    } else {
        entry.display().to_string()
    };
    let mut files = Files {
        sources: Sources::default(),
        nodes: Vec::new(),
    };
    let mut seen = Vec::new();
    let mut stack = Vec::new();
    read_file(
        entry, display, text, &mut files, &mut seen, &mut stack, problems,
    );
    Some(files)
}

/// All of stdin as text, at most [`STDIN_LIMIT`] bytes.
fn read_stdin() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(STDIN_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > STDIN_LIMIT {
        return Err(format!("more than {} MiB", STDIN_LIMIT >> 20));
    }
    if bytes.is_empty() {
        return Err("stdin is empty (nothing was piped in?)".into());
    }
    String::from_utf8(bytes).map_err(|_| "stdin is not UTF-8 text".into())
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_file(
    path: &Path,
    display: String,
    text: String,
    files: &mut Files,
    seen: &mut Vec<PathBuf>,
    stack: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    let id = files.sources.add(path, display, text);
    let canon = canonical(path);
    seen.push(canon.clone());
    stack.push(canon);
    let text = files.sources.get(id).text().to_string();
    match super::parse::parse_nodes(&text) {
        Ok(nodes) => {
            for node in nodes {
                if node.name().value() == "include" {
                    include(path, id, &node, files, seen, stack, problems);
                } else {
                    files.nodes.push((id, node));
                }
            }
        }
        Err(err) => {
            for d in &err.diagnostics {
                let mut p = Problem::error(
                    "syntax",
                    d.message
                        .clone()
                        .unwrap_or_else(|| "invalid KDL syntax".into()),
                )
                .at(
                    &files.sources,
                    Loc {
                        file: id,
                        span: d.span,
                    },
                    d.label.clone().unwrap_or_else(|| "here".into()),
                );
                p = p.help(d.help.clone().unwrap_or_else(|| {
                    "runnerform reads KDL v2 (and whole files in KDL v1); see https://kdl.dev"
                        .into()
                }));
                problems.push(p);
            }
            if err.diagnostics.is_empty() {
                problems.push(Problem::error("syntax", "invalid KDL document"));
            }
        }
    }
    stack.pop();
}

fn include(
    from: &Path,
    file: FileId,
    node: &KdlNode,
    files: &mut Files,
    seen: &mut Vec<PathBuf>,
    stack: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    let loc = |span| Loc { file, span };
    let args: Vec<_> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect();
    let target = match args.as_slice() {
        [one] if one.value().is_string() && node.entries().len() == 1 => one,
        _ => {
            problems.push(
                Problem::error("include", "`include` takes exactly one path")
                    .at(&files.sources, loc(node.span()), "expected one string")
                    .help("write it as: include \"shared/defaults.kdl\""),
            );
            return;
        }
    };
    if node.children().is_some() {
        problems.push(
            Problem::error("include", "`include` takes no children")
                .at(&files.sources, loc(node.span()), "remove the block")
                .help("write it as: include \"shared/defaults.kdl\""),
        );
        return;
    }
    let rel = target.value().as_string().unwrap_or_default();
    let path = from.parent().unwrap_or(Path::new("")).join(rel);
    let canon = canonical(&path);
    if stack.contains(&canon) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&canon))
            .map(|p| {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into())
            })
            .collect();
        problems.push(
            Problem::error(
                "include_cycle",
                format!("include cycle: {}", chain.join(" → ")),
            )
            .at(
                &files.sources,
                loc(target.span()),
                "this file is already being read",
            )
            .help("move what both files need into a third file that each of them includes"),
        );
        return;
    }
    if seen.contains(&canon) {
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => read_file(
            &path,
            path.display().to_string(),
            text,
            files,
            seen,
            stack,
            problems,
        ),
        Err(e) => problems.push(
            Problem::error(
                "include",
                format!("cannot include {}: {}", path.display(), io_reason(&e)),
            )
            .at(&files.sources, loc(target.span()), "included here")
            .help("include paths are relative to the file that includes them"),
        ),
    }
}
