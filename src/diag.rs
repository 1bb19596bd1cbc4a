//! Source files and the problems found in them.
//!
//! Every problem carries the file it was found in, so a fleet spread over included files still
//! gets `file:line:column` and a label on the exact span. Problems are collected, never thrown
//! one at a time: a user fixing a file wants every error at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, NamedSource, Severity, SourceCode, SourceSpan, SpanContents,
};

/// Lines longer than this are shown as a window around the label: miette draws the whole
/// line (and panics past column 65,535), so one 30 KB line would be printed with every error.
pub const MAX_EXCERPT_LINE: usize = 400;

/// Bytes of a long line shown on each side of a label.
const WINDOW_SIDE: usize = 120;

/// The longest part of a label shown on a long line.
const WINDOW_LABEL: usize = 160;

/// Errors shown per file; the rest are counted. Fixing the first ones usually fixes many.
pub const MAX_SHOWN_PER_FILE: usize = 50;

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
    /// What is shown of `source`, decided when first rendered: finding the line of a
    /// problem costs a pass over the file, which thousands of problems must not each pay.
    shown: std::sync::OnceLock<Shown>,
}

/// What a problem shows of its file: the whole text, or a window of one long line.
#[derive(Debug, Clone)]
enum Shown {
    Whole(NamedSource<Arc<String>>),
    Window(Window),
}

/// Part of one long line, placed where it is in the file so that line and column numbers
/// stay those of the file.
#[derive(Debug, Clone)]
struct Window {
    name: String,
    text: String,
    /// Byte offset of `text` in the file.
    offset: usize,
    /// 0-based line and character column of `text`'s first byte.
    line: usize,
    column: usize,
}

impl Window {
    /// A window of the line holding `span`, or `None` when that line is short enough.
    fn around(name: &str, text: &str, span: SourceSpan) -> Option<Window> {
        let at = span.offset().min(text.len());
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        // miette also prints the line before and after: a long neighbour counts as well.
        let prev_start = text[..line_start.saturating_sub(1)]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let next_end = text
            .get(line_end + 1..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |i| line_end + 1 + i);
        let long = |a: usize, b: usize| b.saturating_sub(a) > MAX_EXCERPT_LINE;
        if !long(line_start, line_end) && !long(prev_start, line_start) && !long(line_end, next_end)
        {
            return None;
        }
        let floor = |mut i: usize| {
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let from = floor(at.saturating_sub(WINDOW_SIDE).max(line_start));
        let label_end = (at + span.len().min(WINDOW_LABEL)).min(line_end);
        let to = floor((label_end + WINDOW_SIDE).min(line_end));
        let (line, column) = line_col(text, from);
        Some(Window {
            name: name.to_string(),
            text: text[from..to].to_string(),
            offset: from,
            line: line - 1,
            column: column - 1,
        })
    }

    /// `span` cut to what the window shows.
    fn clip(&self, span: SourceSpan) -> SourceSpan {
        let end = self.offset + self.text.len();
        let start = span.offset().clamp(self.offset, end);
        let stop = (span.offset() + span.len()).clamp(start, end);
        SourceSpan::new(start.into(), stop - start)
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        _before: usize,
        _after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let span = self.clip(*span);
        let local = span.offset() - self.offset;
        let column = self.column + self.text[..local].chars().count();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            self.text.as_bytes(),
            SourceSpan::new(self.offset.into(), self.text.len()),
            self.line,
            column,
            1,
        )))
    }
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
            shown: std::sync::OnceLock::new(),
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
        self.shown = std::sync::OnceLock::new();
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

    fn file_name(&self) -> Option<String> {
        self.source.as_ref().map(|s| s.name().to_string())
    }

    fn shown(&self) -> Option<&Shown> {
        let named = self.source.as_ref()?;
        let loc = self.loc?;
        Some(self.shown.get_or_init(|| {
            match Window::around(named.name(), named.inner().as_str(), loc.span) {
                Some(w) => Shown::Window(w),
                None => Shown::Whole(named.clone()),
            }
        }))
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
        match self.shown()? {
            Shown::Whole(s) => Some(s as &dyn miette::SourceCode),
            Shown::Window(w) => Some(w as &dyn miette::SourceCode),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.loc?;
        let span = match self.shown() {
            Some(Shown::Window(w)) => w.clip(loc.span),
            _ => loc.span,
        };
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            span,
        ))))
    }
}

/// Problems collected while reading and checking a desired state.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub list: Vec<Problem>,
    /// Errors and warnings left out of `list` by the per-file limit (each file's are counted
    /// by one `too_many_problems` entry instead).
    pub hidden: (usize, usize),
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.list.push(p);
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Problem::is_error)
    }

    /// Every error found, those the per-file limit hid included.
    pub fn errors(&self) -> usize {
        self.counted(true) + self.hidden.0
    }

    /// Every warning found, those the per-file limit hid included.
    pub fn warnings(&self) -> usize {
        self.counted(false) + self.hidden.1
    }

    /// Problems in the list of one severity, not counting the entries that stand for hidden
    /// ones.
    fn counted(&self, errors: bool) -> usize {
        self.list
            .iter()
            .filter(|p| p.is_error() == errors && p.code != "too_many_problems")
            .count()
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
        self.limited()
    }

    /// At most [`MAX_SHOWN_PER_FILE`] problems per file, then one that counts the rest: a
    /// mangled file must not print without bound.
    fn limited(mut self) -> Self {
        use std::collections::HashMap;
        // Errors come first: warnings get what the errors leave of the budget.
        let mut errors: HashMap<FileId, usize> = HashMap::new();
        for p in self.list.iter().filter(|p| p.is_error()) {
            if let Some(loc) = p.loc {
                *errors.entry(loc.file).or_default() += 1;
            }
        }
        let mut shown: HashMap<(FileId, bool), usize> = HashMap::new();
        // Per file: its name, hidden errors, hidden warnings.
        let mut hidden: Vec<(FileId, String, usize, usize)> = Vec::new();
        self.list.retain(|p| {
            let Some(loc) = p.loc else {
                return true;
            };
            let budget = if p.is_error() {
                MAX_SHOWN_PER_FILE
            } else {
                MAX_SHOWN_PER_FILE.saturating_sub(errors.get(&loc.file).copied().unwrap_or(0))
            };
            let n = shown.entry((loc.file, p.is_error())).or_default();
            *n += 1;
            if *n <= budget {
                return true;
            }
            let i = match hidden.iter().position(|h| h.0 == loc.file) {
                Some(i) => i,
                None => {
                    hidden.push((loc.file, p.file_name().unwrap_or_default(), 0, 0));
                    hidden.len() - 1
                }
            };
            if p.is_error() {
                hidden[i].2 += 1;
            } else {
                hidden[i].3 += 1;
            }
            false
        });
        for (_, name, errors, warnings) in hidden {
            self.hidden.0 += errors;
            self.hidden.1 += warnings;
            let counts: Vec<String> = [(errors, "error"), (warnings, "warning")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, w)| {
                    if n == 1 {
                        format!("1 more {w}")
                    } else {
                        format!("{n} more {w}s")
                    }
                })
                .collect();
            let message = format!("{} in {name} not shown", counts.join(" and "));
            let p = if errors > 0 {
                Problem::error("too_many_problems", message)
            } else {
                Problem::warning("too_many_problems", message)
            };
            self.list.push(p.help(format!(
                "runnerform shows the first {MAX_SHOWN_PER_FILE} problems of a file; fix those \
                 and run again"
            )));
        }
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
    // Values learnt to be secret after the source was read (an inline token) are masked here.
    crate::secrets::mask(&out)
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
