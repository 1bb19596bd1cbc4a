//! Source files and the problems found in them.
//!
//! Every problem carries the file it was found in, so a fleet spread over included files still
//! gets `file:line:column` and a label on the exact span. Problems are collected, never thrown
//! one at a time: a user fixing a file wants every error at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity,
    SourceSpan,
};

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub u32);

/// Where something was written: a span in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: FileId,
    pub span: SourceSpan,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    raw: Arc<String>,
    /// The text with tokens masked: what diagnostics show.
    pub named: NamedSource<Arc<String>>,
}

impl SourceFile {
    /// The text as read, for parsing. Never shown: show `named`.
    pub fn text(&self) -> &str {
        self.raw.as_str()
    }
}

/// Every file read for one desired state, the entry file first.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, display: String, text: String) -> FileId {
        let id = FileId(self.files.len() as u32);
        let masked = crate::secrets::mask(&text);
        let raw = Arc::new(text);
        let shown = if masked == *raw {
            raw.clone()
        } else {
            Arc::new(masked)
        };
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            raw,
            named: NamedSource::new(display, shown),
        });
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// `file:line:column` of a location, 1-based, for hints that point elsewhere.
    pub fn position(&self, loc: Loc) -> String {
        let file = self.get(loc.file);
        let (line, col) = line_col(file.text(), loc.span.offset());
        format!("{}:{line}:{col}", file.named.name())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// One finding: an error or a warning, with a label on where it was found and a hint.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub loc: Option<Loc>,
    source: Option<NamedSource<Arc<String>>>,
}

impl Problem {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            code,
            message: message.into(),
            label: "here".into(),
            help: None,
            loc: None,
            source: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    pub fn at(mut self, sources: &Sources, loc: Loc, label: impl Into<String>) -> Self {
        self.source = Some(sources.get(loc.file).named.clone());
        self.loc = Some(loc);
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The file it was found in (as shown to the user), and the 1-based line and column.
    pub fn position(&self) -> Option<(String, usize, usize)> {
        let (source, loc) = (self.source.as_ref()?, self.loc?);
        let (line, col) = line_col(source.inner(), loc.span.offset());
        Some((source.name().to_string(), line, col))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("runnerform::{}", self.code)))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.loc?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            loc.span,
        ))))
    }
}

/// Problems collected while reading and checking a desired state.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.list.push(p);
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Problem::is_error)
    }

    pub fn errors(&self) -> usize {
        self.list.iter().filter(|p| p.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.list.len() - self.errors()
    }

    /// Problems in source order: by file, then by offset, so output is stable.
    /// Identical problems (a bad template used by several runners) are reported once.
    pub fn sorted(mut self) -> Self {
        self.list.sort_by_key(|p| {
            p.loc
                .map_or((u32::MAX, usize::MAX), |l| (l.file.0, l.span.offset()))
        });
        self.list
            .dedup_by(|a, b| a.loc == b.loc && a.message == b.message && a.code == b.code);
        self
    }
}

/// How diagnostics are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
}

pub fn render(problem: &dyn Diagnostic, style: Style) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, problem).is_err() {
        out = format!("{problem}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbé c", 5), (2, 3));
    }
}
