//! Reading KDL files: the entry file (or every `.kdl` file of a directory) and everything
//! they include.
//!
//! `include "path"` at the top level splices another file's top-level nodes in its place.
//! Paths are relative to the including file. A file is read once even when several files
//! include it (a fleet's shared defaults), and a cycle is an error. The entry file `-` is
//! read from stdin (a provisioning script can pipe it in); what it includes is relative to the
//! current directory.
//!
//! Every read is bounded: devices, FIFOs and sockets are refused before a byte is read (an
//! `include "/dev/zero"` would otherwise read until memory runs out, a FIFO block forever),
//! and a file larger than [`MAX_KDL_BYTES`] is refused.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kdl::KdlNode;

use crate::diag::{FileId, Loc, Problem, Problems, Sources};

/// The largest KDL file read: a thousand-runner fleet is a few hundred KB.
pub const MAX_KDL_BYTES: u64 = 16 << 20;

/// The entry file name that means stdin.
pub const STDIN: &str = "-";

/// The top-level nodes of all files, includes spliced in place.
pub struct Files {
    pub sources: Sources,
    pub nodes: Vec<(FileId, KdlNode)>,
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Not a regular file: what it is instead.
    Special(&'static str),
    TooLarge {
        limit: u64,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => f.write_str(&io_reason(e)),
            ReadError::Special(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge { limit } => {
                write!(f, "it is larger than {} MB", limit / (1 << 20))
            }
        }
    }
}

/// Reads at most `limit` bytes of a regular file. The file is opened without blocking and
/// its type checked on the open descriptor, so a FIFO or device is never read from.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let ty = meta.file_type();
    let special = if ty.is_dir() {
        Some("a directory")
    } else if ty.is_fifo() {
        Some("a FIFO")
    } else if ty.is_socket() {
        Some("a socket")
    } else if ty.is_char_device() || ty.is_block_device() {
        Some("a device")
    } else if !ty.is_file() {
        Some("a special file")
    } else {
        None
    };
    if let Some(what) = special {
        return Err(ReadError::Special(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// A file's text, or where its first byte that is not UTF-8 is: the error then shows the
/// text up to there, so that it has a line and column.
fn decode_utf8(bytes: Vec<u8>) -> Result<String, (String, usize)> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        (String::from_utf8_lossy(e.as_bytes()).into_owned(), at)
    })
}

pub fn load(entry: &Path, problems: &mut Problems) -> Option<Files> {
    if entry == Path::new(STDIN) {
        return load_stdin(problems);
    }
    let entries = if entry.is_dir() {
        match kdl_files_in(entry) {
            Ok(list) if !list.is_empty() => list,
            Ok(_) => {
                problems.push(
                    Problem::error("io", format!("{} holds no .kdl file", entry.display()))
                        .help("pass a KDL file or a directory of KDL files with -f"),
                );
                return None;
            }
            Err(e) => {
                problems.push(Problem::error(
                    "io",
                    format!("cannot read {}: {}", entry.display(), io_reason(&e)),
                ));
                return None;
            }
        }
    } else {
        vec![entry.to_path_buf()]
    };
    let mut files = Files {
        sources: Sources::default(),
        nodes: Vec::new(),
    };
    let mut seen = Vec::new();
    let mut stack = Vec::new();
    for path in entries {
        if seen.contains(&canonical(&path)) {
            continue;
        }
        let text = match read_bounded(&path, MAX_KDL_BYTES) {
            Ok(t) => t,
            Err(e) => {
                problems.push(
                    Problem::error("io", format!("cannot read {}: {e}", path.display()))
                        .help("pass the file with -f FILE, or set RUNNERFORM_FILE"),
                );
                return None;
            }
        };
        read_file(
            &path,
            path.display().to_string(),
            text,
            &mut files,
            &mut seen,
            &mut stack,
            problems,
        );
    }
    Some(files)
}

/// The entry file from stdin, at most [`MAX_KDL_BYTES`]: a pipe that never ends is bounded.
fn load_stdin(problems: &mut Problems) -> Option<Files> {
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_KDL_BYTES + 1)
        .read_to_end(&mut bytes);
    let why = match read {
        Err(e) => Some(io_reason(&e)),
        Ok(_) if bytes.len() as u64 > MAX_KDL_BYTES => {
            Some(format!("more than {} MB", MAX_KDL_BYTES >> 20))
        }
        Ok(_) if bytes.is_empty() => Some("stdin is empty (nothing was piped in?)".into()),
        Ok(_) => None,
    };
    if let Some(why) = why {
        problems.push(
            Problem::error("io", format!("cannot read stdin: {why}"))
                .help("pass the file with -f FILE (or -f - for stdin), or set RUNNERFORM_FILE"),
        );
        return None;
    }
    let mut files = Files {
        sources: Sources::default(),
        nodes: Vec::new(),
    };
    read_file(
        Path::new(STDIN),
        "<stdin>".to_string(),
        bytes,
        &mut files,
        &mut Vec::new(),
        &mut Vec::new(),
        problems,
    );
    Some(files)
}

/// The `.kdl` files of a directory, by name: `-f DIR` reads them as if one file included
/// each. Files that start with `.` (editor backups) are not read.
fn kdl_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".kdl") {
            continue;
        }
        if e.file_type()?.is_file() || e.path().is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
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
    bytes: Vec<u8>,
    files: &mut Files,
    seen: &mut Vec<PathBuf>,
    stack: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    let canon = canonical(path);
    seen.push(canon.clone());
    let text = match decode_utf8(bytes) {
        Ok(t) => t,
        Err((shown, at)) => {
            let id = files.sources.add(path, display, shown);
            problems.push(
                Problem::error("encoding", "the file is not valid UTF-8")
                    .at(
                        &files.sources,
                        Loc {
                            file: id,
                            span: (at, 1).into(),
                        },
                        "this byte is not UTF-8",
                    )
                    .help("KDL files are UTF-8: save the file as UTF-8"),
            );
            return;
        }
    };
    let id = files.sources.add(path, display, text);
    stack.push(canon);
    let text = files.sources.get(id).text().to_string();
    if let Some((span, message, help)) = super::parse::too_complex(&text) {
        problems.push(
            Problem::error("too_complex", message)
                .at(&files.sources, Loc { file: id, span }, "here")
                .help(help),
        );
        stack.pop();
        return;
    }
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
                    super::parse::hint(&text, d.span).unwrap_or_else(|| {
                        "runnerform reads KDL v2 (and whole files in KDL v1); see https://kdl.dev"
                            .into()
                    })
                }));
                problems.push(p);
            }
            if err.diagnostics.is_empty() {
                problems.push(Problem::error("syntax", "invalid KDL document").at(
                    &files.sources,
                    Loc {
                        file: id,
                        span: (0, 0).into(),
                    },
                    "in this file",
                ));
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
    match read_bounded(&path, MAX_KDL_BYTES) {
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
            Problem::error("include", format!("cannot include {}: {e}", path.display()))
                .at(&files.sources, loc(target.span()), "included here")
                .help("include paths are relative to the file that includes them"),
        ),
    }
}
