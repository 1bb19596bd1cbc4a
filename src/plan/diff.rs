//! The unified diff of config.toml, computed piece by piece.
//!
//! Where the file was cut into entries ([`crate::local::layout`]), the old and the new text
//! are made of pieces that correspond in order (the globals, each entry, the trailing
//! comments): each piece is compared on its own, and only a piece that changed is split into
//! lines and diffed. The work then follows the entries a plan changes, not the size of the
//! file, and stays linear in the number of changed entries: one diff of the whole file grows
//! as n log n with its unique lines. Within a piece, the lines both sides start and end with
//! are set aside first, so a file read whole (one piece) costs only its changed middle.

use similar::{Algorithm, DiffOp, TextDiff, group_diff_ops, udiff::UnifiedHunkHeader};

/// Lines of context around each change.
pub const CONTEXT: usize = 3;

/// How many lines one piece takes in the old text and in the new one, in order; the last
/// piece takes whatever is left. Empty: the texts are one piece.
pub type Pair = (usize, usize);

/// The unified diff of `old` and `new` (empty when they are equal), with `name` in its
/// header. Pieces that do not fit the texts are ignored: the texts are then one piece.
pub fn unified(name: &str, old: &str, new: &str, pairs: &[Pair]) -> String {
    let diff = Pieces::diff(old, new, pairs)
        .unwrap_or_else(|| Pieces::diff(old, new, &[]).expect("one piece always fits the texts"));
    diff.format(name, old, new)
}

/// Diff operations over the whole texts' lines, and where lines start in each text.
#[derive(Default)]
struct Pieces {
    ops: Vec<DiffOp>,
    /// (line, byte where that line starts), ascending, for the old and the new text.
    old_marks: Vec<(usize, usize)>,
    new_marks: Vec<(usize, usize)>,
    old_line: usize,
    new_line: usize,
}

impl Pieces {
    fn diff(old: &str, new: &str, pairs: &[Pair]) -> Option<Pieces> {
        let mut p = Pieces::default();
        let whole = [(0, 0)];
        let pairs = if pairs.is_empty() { &whole[..] } else { pairs };
        let (mut o, mut n) = (0, 0);
        for (i, &(a, b)) in pairs.iter().enumerate() {
            let last = i + 1 == pairs.len();
            let (oe, ne) = if last {
                (old.len(), new.len())
            } else {
                (after_lines(old, o, a)?, after_lines(new, n, b)?)
            };
            p.piece(old, new, o..oe, n..ne);
            (o, n) = (oe, ne);
        }
        p.old_marks.push((p.old_line, old.len()));
        p.new_marks.push((p.new_line, new.len()));
        Some(p)
    }

    fn mark(&mut self, o: usize, n: usize) {
        self.old_marks.push((self.old_line, o));
        self.new_marks.push((self.new_line, n));
    }

    fn equal(&mut self, len: usize) {
        if len == 0 {
            return;
        }
        if let Some(DiffOp::Equal { len: l, .. }) = self.ops.last_mut() {
            *l += len;
        } else {
            self.ops.push(DiffOp::Equal {
                old_index: self.old_line,
                new_index: self.new_line,
                len,
            });
        }
        self.old_line += len;
        self.new_line += len;
    }

    fn piece(
        &mut self,
        old: &str,
        new: &str,
        o: std::ops::Range<usize>,
        n: std::ops::Range<usize>,
    ) {
        self.mark(o.start, n.start);
        let (ot, nt) = (&old[o.clone()], &new[n.clone()]);
        if ot == nt {
            self.equal(lines(ot));
            return;
        }
        let (ob, nb) = (ot.as_bytes(), nt.as_bytes());
        // The lines both start with.
        let same = ob.iter().zip(nb).take_while(|(a, b)| a == b).count();
        let start = ob[..same]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        self.equal(ot[..start].matches('\n').count());
        // The lines both end with: the common end, from just after a newline in it (or
        // from its start if both sides have a newline right before it).
        let (or, nr) = (&ob[start..], &nb[start..]);
        let room = or.len().min(nr.len());
        let tail = or
            .iter()
            .rev()
            .zip(nr.iter().rev())
            .take(room)
            .take_while(|(a, b)| a == b)
            .count();
        let (mut oe, mut ne) = (or.len() - tail, nr.len() - tail);
        let at_line_start = |r: &[u8], e: usize| e == 0 || r[e - 1] == b'\n';
        if !(at_line_start(or, oe) && at_line_start(nr, ne)) {
            let skip = or[oe..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(tail, |i| i + 1);
            (oe, ne) = (oe + skip, ne + skip);
        }
        let (om, nm) = (&ot[start..start + oe], &nt[start..start + ne]);
        self.mark(o.start + start, n.start + start);
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(om, nm);
        for op in diff.ops() {
            self.push_shifted(*op);
        }
        self.old_line += lines(om);
        self.new_line += lines(nm);
        self.mark(o.start + start + oe, n.start + start + ne);
        self.equal(lines(&ot[start + oe..]));
    }

    fn push_shifted(&mut self, op: DiffOp) {
        let (ol, nl) = (self.old_line, self.new_line);
        let op = match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                if let Some(DiffOp::Equal { len: l, .. }) = self.ops.last_mut() {
                    *l += len;
                    return;
                }
                DiffOp::Equal {
                    old_index: old_index + ol,
                    new_index: new_index + nl,
                    len,
                }
            }
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => DiffOp::Delete {
                old_index: old_index + ol,
                old_len,
                new_index: new_index + nl,
            },
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => DiffOp::Insert {
                old_index: old_index + ol,
                new_index: new_index + nl,
                new_len,
            },
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => DiffOp::Replace {
                old_index: old_index + ol,
                old_len,
                new_index: new_index + nl,
                new_len,
            },
        };
        self.ops.push(op);
    }

    fn format(self, name: &str, old: &str, new: &str) -> String {
        let mut out = String::new();
        let groups = group_diff_ops(self.ops, CONTEXT);
        for group in groups.iter().filter(|g| !g.is_empty()) {
            if out.is_empty() {
                out.push_str(&format!("--- {name}\n+++ {name} (planned)\n"));
            }
            out.push_str(&format!("{}\n", UnifiedHunkHeader::new(group)));
            let mut put = |tag: char, text: &str, marks: &[(usize, usize)], from, len| {
                let at = line_start(text, marks, from);
                for line in text[at..].split_inclusive('\n').take(len) {
                    out.push(tag);
                    out.push_str(line);
                    if !line.ends_with('\n') {
                        out.push_str("\n\\ No newline at end of file\n");
                    }
                }
            };
            for op in group {
                let (o, n) = (op.old_range(), op.new_range());
                match op {
                    DiffOp::Equal { .. } => put(' ', old, &self.old_marks, o.start, o.len()),
                    _ => {
                        put('-', old, &self.old_marks, o.start, o.len());
                        put('+', new, &self.new_marks, n.start, n.len());
                    }
                }
            }
        }
        out
    }
}

/// Lines in `s` as a line diff counts them: a last line without a newline counts too.
fn lines(s: &str) -> usize {
    s.matches('\n').count() + usize::from(!s.is_empty() && !s.ends_with('\n'))
}

/// The byte after the `count`-th newline from `from`; `None` past the end.
fn after_lines(text: &str, from: usize, count: usize) -> Option<usize> {
    let mut at = from;
    for _ in 0..count {
        at += text[at..].find('\n')? + 1;
    }
    Some(at)
}

/// Where line `k` starts, scanning from the nearer mark.
fn line_start(text: &str, marks: &[(usize, usize)], k: usize) -> usize {
    let i = marks.partition_point(|m| m.0 <= k).max(1);
    let (pl, pb) = marks[i - 1];
    if let Some(&(nl, nb)) = marks.get(i)
        && nl - k < k - pl
    {
        let mut at = nb;
        for _ in k..nl {
            at = text[..at - 1].rfind('\n').map_or(0, |j| j + 1);
        }
        return at;
    }
    after_lines(text, pb, k - pl).unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(old: &str, new: &str) -> String {
        TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(old, new)
            .unified_diff()
            .context_radius(CONTEXT)
            .header("f", "f (planned)")
            .to_string()
    }

    fn count(s: &str) -> usize {
        s.matches('\n').count()
    }

    #[test]
    fn piece_by_piece_gives_the_whole_files_diff() {
        let entry = |i: usize, image: &str| {
            format!(
                "\n[[runners]]\n  name = \"r{i}\"\n  id = {i}\n  limit = 2\n  image = \"{image}\"\n"
            )
        };
        let head = "concurrent = 4\n";
        let n = 30;
        let old_entries: Vec<String> = (0..n).map(|i| entry(i, "a")).collect();
        let tail = "\n# the end\n";
        let old = format!("{head}{}{tail}", old_entries.concat());
        // Every third entry changed, the tenth removed, one appended, a global changed.
        let mut new_entries = Vec::new();
        let mut pairs = vec![(count(head), count("concurrent = 8\n"))];
        for (i, e) in old_entries.iter().enumerate() {
            let ne = match i {
                10 => String::new(),
                _ if i.is_multiple_of(3) => entry(i, "b"),
                _ => e.clone(),
            };
            pairs.push((count(e), count(&ne)));
            new_entries.push(ne);
        }
        let appended = entry(99, "c");
        pairs.push((0, count(&appended)));
        pairs.push((count(tail), count(tail)));
        let new = format!("concurrent = 8\n{}{appended}{tail}", new_entries.concat());
        // Where a removal or an addition meets a change, either side of it is as short a
        // diff: the pieces' diff is then another one of the same size, which patches `old`
        // into `new`.
        let got = unified("f", &old, &new, &pairs);
        assert_eq!(patch(&old, &got), new, "{got}");
        let size = |d: &str| d.lines().filter(|l| l.starts_with(['-', '+'])).count();
        assert_eq!(size(&got), size(&whole(&old, &new)));
        // Where no removal or addition meets a change, the very same diff.
        let changed = |i: usize| {
            if i.is_multiple_of(3) {
                entry(i, "b")
            } else {
                entry(i, "a")
            }
        };
        let new: String = (0..n).map(changed).collect();
        let old_body = old_entries.concat();
        let pairs: Vec<Pair> = old_entries.iter().map(|e| (count(e), count(e))).collect();
        assert_eq!(
            unified("f", &old_body, &new, &pairs),
            whole(&old_body, &new)
        );
        // One piece, or pieces that do not fit the texts: the whole files' diff.
        assert_eq!(unified("f", &old_body, &new, &[]), whole(&old_body, &new));
        assert_eq!(
            unified("f", &old_body, &new, &[(9999, 0), (1, 1)]),
            whole(&old_body, &new)
        );
    }

    #[test]
    fn any_pieces_give_a_diff_that_patches_old_into_new() {
        // A small linear congruential generator: the same cases on every run.
        let mut seed: u64 = 0x5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for _ in 0..300 {
            let (mut old, mut new, mut pairs) = (String::new(), String::new(), Vec::new());
            for _ in 0..1 + next(12) {
                let piece = |next: &mut dyn FnMut(usize) -> usize| -> String {
                    (0..next(6)).map(|_| format!("l{}\n", next(4))).collect()
                };
                let o = piece(&mut next);
                let n = if next(2) == 0 {
                    o.clone()
                } else {
                    piece(&mut next)
                };
                pairs.push((count(&o), count(&n)));
                old.push_str(&o);
                new.push_str(&n);
            }
            let got = unified("f", &old, &new, &pairs);
            assert_eq!(patch(&old, &got), new, "{old:?} -> {new:?}\n{got}");
            assert_eq!(got.is_empty(), old == new);
        }
    }

    /// Applies a unified diff of whole lines that all end with a newline.
    fn patch(old: &str, diff: &str) -> String {
        let old: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut at = 0;
        for line in diff.split_inclusive('\n').skip(2) {
            if let Some(h) = line.strip_prefix("@@ -") {
                let start: usize = h.split([',', ' ']).next().unwrap().parse().unwrap();
                let start = start.saturating_sub(1);
                out.extend(old[at..start].iter().copied());
                at = start;
            } else if let Some(l) = line.strip_prefix(' ') {
                assert_eq!(old[at], l);
                out.push_str(l);
                at += 1;
            } else if let Some(l) = line.strip_prefix('-') {
                assert_eq!(old[at], l);
                at += 1;
            } else if let Some(l) = line.strip_prefix('+') {
                out.push_str(l);
            }
        }
        out.extend(old[at..].iter().copied());
        out
    }

    #[test]
    fn one_piece_gives_the_whole_files_diff() {
        let lines: Vec<String> = (0..40).map(|i| format!("line {i}\n")).collect();
        let base = lines.concat();
        let mut cases = vec![
            (base.clone(), base.replace("line 20\n", "line twenty\n")),
            (base.clone(), base.replace("line 0\n", "")),
            (base.clone(), base.replace("line 39\n", "line 39")),
            (base.clone(), format!("{base}line 40\n")),
            (
                base.clone(),
                base.replace("line 2\n", "x\n").replace("line 37\n", ""),
            ),
            (base.clone(), base.replace("line 1", "line 1x")),
            ("a\nb".to_string(), "a\nc".to_string()),
            ("x\nabc".to_string(), "yabc".to_string()),
            ("x\nabc\n".to_string(), "x\nyabc\n".to_string()),
            (String::new(), "a\n".to_string()),
            ("a\n".to_string(), String::new()),
            ("same\n".to_string(), "same\n".to_string()),
        ];
        cases.push((base.replace("line 9\n", ""), base.clone()));
        for (old, new) in cases {
            assert_eq!(
                unified("f", &old, &new, &[]),
                whole(&old, &new),
                "{old:?} -> {new:?}"
            );
        }
    }
}
