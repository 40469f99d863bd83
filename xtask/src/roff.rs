//! Writing roff for man(7): escaping, and the two kinds of text the pages are made of
//! besides what clap_mangen renders: Markdown (the hand-written parts and the section-5
//! page) and clap's plain after-help text.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Escapes text for a roff text line: backslashes, and `-` as `\-` so that options and
/// paths copy out of a rendered page as the ASCII hyphen-minus they are.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            // Typographic quotes and dashes render, but a plain-text page is easier to
            // search in ASCII.
            '\u{2019}' => out.push('\''),
            '\u{2013}' | '\u{2014}' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    out
}

/// Makes `line` safe as a roff text line: a leading `.` or `'` would make it a request.
fn text_line(line: &str) -> String {
    let line = line.trim();
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line.to_string()
    }
}

/// A heading argument: plain text, no font changes, quotes dropped.
fn heading_text(text: &str) -> String {
    escape(&text.replace('"', ""))
}

/// Roff for a man page, collected line by line.
#[derive(Default)]
pub(crate) struct Page {
    out: String,
    /// The page uses tables, so it must start with the tbl preprocessor hint.
    pub(crate) tables: bool,
    /// The section being written (`NAME` takes no paragraph requests: whatis reads it).
    current: String,
}

impl Page {
    /// A request line (`.SH NAME`).
    pub(crate) fn request(&mut self, name: &str, args: &str) {
        self.out.push('.');
        self.out.push_str(name);
        if !args.is_empty() {
            self.out.push(' ');
            self.out.push_str(args);
        }
        self.out.push('\n');
    }

    /// Already escaped text, as one filled text line.
    pub(crate) fn text(&mut self, escaped: &str) {
        let line = text_line(escaped);
        if !line.is_empty() {
            self.out.push_str(&line);
            self.out.push('\n');
        }
    }

    /// Roff that is already complete (clap_mangen's sections).
    pub(crate) fn raw(&mut self, roff: &str) {
        self.out.push_str(roff);
        if !roff.ends_with('\n') {
            self.out.push('\n');
        }
    }

    pub(crate) fn section(&mut self, title: &str) {
        self.current = title.to_uppercase();
        self.request("SH", &heading_text(&self.current.clone()));
    }

    /// A new paragraph, except in the NAME section.
    pub(crate) fn paragraph(&mut self) {
        if self.current != "NAME" {
            self.request("PP", "");
        }
    }

    pub(crate) fn finish(self) -> String {
        if self.tables {
            format!("'\\\" t\n{}", self.out)
        } else {
            self.out
        }
    }
}

/// One Markdown section taken out of a document: the heading line `## TITLE` and what
/// follows it up to the next heading of that level or above.
pub(crate) fn markdown_section<'a>(doc: &'a str, title: &str) -> Option<&'a str> {
    let mut start = None;
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if let Some(rest) = trimmed.strip_prefix("## ") {
            match start {
                None if rest.trim() == title => start = Some(offset),
                Some(s) => return Some(&doc[s..offset]),
                None => {}
            }
        } else if trimmed.starts_with("# ") && start.is_some() {
            return Some(&doc[start?..offset]);
        }
        offset += line.len();
    }
    start.map(|s| &doc[s..])
}

/// Renders Markdown into `page`: `#` and `##` headings become sections (`.SH`), deeper ones
/// subsections (`.SS`); paragraphs, lists (nested), tables (tbl), code blocks, inline code
/// and bold as bold, emphasis as italics. Links keep their text, and an address of their
/// own only when it points outside (a path in this repository means nothing on an
/// installed system).
pub(crate) fn markdown(page: &mut Page, md: &str) {
    let mut w = MdWriter::default();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        w.event(page, event);
    }
    w.flush(page);
}

#[derive(Default)]
struct MdWriter {
    /// Inline text of the current block, escaped, with font changes.
    line: String,
    fonts: Vec<&'static str>,
    /// Open lists: the next number of each ordered one.
    lists: Vec<Option<u64>>,
    /// Whether the current list item already has its `.IP` line.
    item_started: bool,
    heading: Option<HeadingLevel>,
    table: Option<Table>,
    code_block: bool,
    link: Vec<String>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    /// Plain widths of each column, for choosing its layout.
    widths: Vec<usize>,
    cell: String,
    cell_plain: usize,
    row: Vec<String>,
}

impl MdWriter {
    fn push_font(&mut self, font: &'static str) {
        self.fonts.push(font);
        let code = format!("\\f{font}");
        self.inline(&code, 0);
    }

    fn pop_font(&mut self) {
        self.fonts.pop();
        let font = self.fonts.last().copied().unwrap_or("R");
        let code = format!("\\f{font}");
        self.inline(&code, 0);
    }

    /// Appends escaped inline text of `plain` visible characters.
    fn inline(&mut self, escaped: &str, plain: usize) {
        match &mut self.table {
            Some(t) => {
                t.cell.push_str(escaped);
                t.cell_plain += plain;
            }
            None => self.line.push_str(escaped),
        }
    }

    fn flush(&mut self, page: &mut Page) {
        let line = std::mem::take(&mut self.line);
        page.text(&line);
    }

    /// Starts a block of text: a new paragraph, or the next part of a list item.
    fn block_start(&mut self, page: &mut Page) {
        self.flush(page);
        if self.lists.is_empty() {
            page.paragraph();
        } else if self.item_started {
            page.request("IP", "");
        } else {
            self.item_mark(page);
        }
    }

    fn item_mark(&mut self, page: &mut Page) {
        let mark = match self.lists.last_mut() {
            Some(Some(n)) => {
                let mark = format!("{n}.");
                *n += 1;
                (mark, 4)
            }
            _ => ("\\(bu".to_string(), 2),
        };
        page.request("IP", &format!("{} {}", mark.0, mark.1));
        self.item_started = true;
    }

    fn event(&mut self, page: &mut Page, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(page, tag),
            Event::End(tag) => self.end(page, tag),
            Event::Text(text) => {
                if self.code_block {
                    for line in text.lines() {
                        page.text(&escape(line));
                    }
                } else if self.heading.is_some() {
                    self.line.push_str(&text);
                } else {
                    let plain = text.chars().count();
                    self.inline(&escape(&text), plain);
                }
            }
            Event::Code(code) => {
                if self.heading.is_some() {
                    self.line.push_str(&code);
                } else {
                    self.push_font("B");
                    // `\%`: a command or path is never hyphenated.
                    self.inline(&format!("\\%{}", escape(&code)), code.chars().count());
                    self.pop_font();
                }
            }
            Event::SoftBreak => self.inline(" ", 1),
            Event::HardBreak => {
                self.flush(page);
                page.request("br", "");
            }
            // Comments and other HTML have no place in a man page.
            Event::Html(_) | Event::InlineHtml(_) => {}
            _ => {}
        }
    }

    fn start(&mut self, page: &mut Page, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph if self.table.is_none() => self.block_start(page),
            Tag::Heading { level, .. } => {
                self.flush(page);
                self.heading = Some(level);
            }
            Tag::List(first) => {
                self.flush(page);
                if !self.lists.is_empty() {
                    page.request("RS", "");
                }
                self.lists.push(first);
                self.item_started = false;
            }
            Tag::Item => {
                self.flush(page);
                self.item_mark(page);
            }
            Tag::CodeBlock(_) => {
                self.flush(page);
                page.request("PP", "");
                page.request("RS", "4");
                page.request("nf", "");
                self.code_block = true;
            }
            Tag::BlockQuote(_) => {
                self.flush(page);
                page.request("RS", "");
            }
            Tag::Table(_) => {
                self.flush(page);
                page.tables = true;
                self.table = Some(Table::default());
            }
            Tag::TableCell => {
                if let Some(t) = &mut self.table {
                    t.cell.clear();
                    t.cell_plain = 0;
                }
            }
            Tag::Emphasis => self.push_font("I"),
            Tag::Strong => self.push_font("B"),
            Tag::Link { dest_url, .. } => self.link.push(dest_url.to_string()),
            _ => {}
        }
    }

    fn end(&mut self, page: &mut Page, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph if self.table.is_none() => self.flush(page),
            TagEnd::Heading(level) => {
                let title = std::mem::take(&mut self.line);
                self.heading = None;
                match level {
                    HeadingLevel::H1 | HeadingLevel::H2 => page.section(&title),
                    _ => page.request("SS", &heading_text(&title)),
                }
            }
            TagEnd::List(_) => {
                self.flush(page);
                self.lists.pop();
                if !self.lists.is_empty() {
                    page.request("RE", "");
                }
                // Text after a list is a paragraph of its own.
                self.item_started = !self.lists.is_empty();
            }
            TagEnd::Item => self.flush(page),
            TagEnd::CodeBlock => {
                page.request("fi", "");
                page.request("RE", "");
                self.code_block = false;
            }
            TagEnd::BlockQuote(_) => {
                self.flush(page);
                page.request("RE", "");
            }
            TagEnd::TableCell => {
                if let Some(t) = &mut self.table {
                    let i = t.row.len();
                    if t.widths.len() <= i {
                        t.widths.resize(i + 1, 0);
                    }
                    t.widths[i] = t.widths[i].max(t.cell_plain);
                    let cell = std::mem::take(&mut t.cell);
                    t.row.push(cell.trim().to_string());
                }
            }
            TagEnd::TableHead | TagEnd::TableRow => {
                if let Some(t) = &mut self.table {
                    let row = std::mem::take(&mut t.row);
                    t.rows.push(row);
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    write_table(page, &t);
                }
            }
            TagEnd::Emphasis | TagEnd::Strong => self.pop_font(),
            TagEnd::Link => {
                let url = self.link.pop().unwrap_or_default();
                if url.starts_with("http://") || url.starts_with("https://") {
                    let shown = format!(" <{url}>");
                    self.inline(&escape(&shown), shown.len());
                }
            }
            _ => {}
        }
    }
}

/// Lines of text a man page has at 80 columns, less its indent.
const LINE: usize = 72;

/// A tbl table: the header row in bold, a box around it. Columns too wide to share a line
/// become text blocks that wrap; the widest one takes the room left.
fn write_table(page: &mut Page, t: &Table) {
    let cols = t.widths.len();
    let total: usize = t.widths.iter().map(|w| w + 3).sum();
    let wrap: Vec<bool> = t
        .widths
        .iter()
        .map(|&w| total > LINE && w > LINE / cols.max(1))
        .collect();
    let widest = (0..cols).max_by_key(|&i| t.widths[i]).unwrap_or(0);
    page.request("PP", "");
    page.raw(".TS\nbox tab(\t);");
    let format = |bold: bool| -> String {
        (0..cols)
            .map(|i| {
                let mut f = String::from("l");
                if bold {
                    f.push('b');
                }
                if wrap[i] && i == widest {
                    f.push('x');
                }
                f
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    page.raw(&format!("{}\n{}.", format(true), format(false)));
    for (n, row) in t.rows.iter().enumerate() {
        if n == 1 {
            // A rule under the header row.
            page.raw("_");
        }
        let cells: Vec<String> = (0..cols)
            .map(|i| {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if wrap[i] {
                    format!("T{{\n{}\nT}}", text_line(cell))
                } else if cell.is_empty() {
                    // An empty cell would be read as a continuation of the one above.
                    "\\&".to_string()
                } else {
                    text_line(cell)
                }
            })
            .collect();
        page.raw(&cells.join("\t"));
    }
    page.raw(".TE");
    // tbl leaves no space after the box for the next paragraph's request to keep.
    page.request("sp", "");
}

/// Renders clap's plain after-help text: paragraphs separated by blank lines; a short
/// first line in capitals (`KEYS`) is a subsection heading; indented lines of the form
/// `  TERM   description` (with deeper-indented continuation lines) become tagged
/// paragraphs; everything else is filled text.
pub(crate) fn help_text(page: &mut Page, text: &str) {
    for para in text.split("\n\n") {
        let mut lines = para.lines().peekable();
        let Some(first) = lines.peek() else { continue };
        let mut filled = String::new();
        if is_heading(first) {
            // `[HMAC] TABLE: what it is` is a heading and the start of its paragraph.
            let (head, rest) = first.split_once(':').unwrap_or((first, ""));
            page.request("SS", &heading_text(head.trim()));
            if !rest.trim().is_empty() {
                filled.push_str(rest.trim());
                filled.push(' ');
            }
            lines.next();
        }
        let mut in_items = false;
        let mut started = false;
        let flush_filled = |page: &mut Page, filled: &mut String, started: &mut bool| {
            if !filled.is_empty() {
                if !*started {
                    page.request("PP", "");
                }
                page.text(&escape(filled.trim()));
                filled.clear();
                *started = true;
            }
        };
        for line in lines {
            let indent = line.len() - line.trim_start().len();
            if indent == 0 {
                if in_items {
                    // Text after a list of items starts a paragraph of its own.
                    started = false;
                    in_items = false;
                }
                filled.push_str(line.trim());
                filled.push(' ');
            } else if let Some((term, desc)) = split_item(line).filter(|_| indent <= 2) {
                flush_filled(page, &mut filled, &mut started);
                page.request("TP", "");
                page.text(&format!("\\fB{}\\fR", escape(term)));
                page.text(&escape(desc));
                in_items = true;
                started = true;
            } else if in_items {
                page.text(&escape(line.trim()));
            } else {
                filled.push_str(line.trim());
                filled.push(' ');
            }
        }
        flush_filled(page, &mut filled, &mut started);
    }
}

/// A short line in capitals: `KEYS`, `[HMAC] TABLE: ...` counts only up to its colon.
fn is_heading(line: &str) -> bool {
    let head = line.split(':').next().unwrap_or(line).trim();
    !line.starts_with(' ')
        && head.len() >= 3
        && head.chars().any(|c| c.is_ascii_uppercase())
        && !head.chars().any(|c| c.is_ascii_lowercase())
}

/// `  TERM   description`: the term, then the text after a gap of two spaces or more.
fn split_item(line: &str) -> Option<(&str, &str)> {
    let body = line.trim_start();
    let gap = body.find("  ")?;
    let (term, rest) = body.split_at(gap);
    let desc = rest.trim_start();
    (!desc.is_empty()).then_some((term, desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> String {
        let mut page = Page::default();
        markdown(&mut page, text);
        page.finish()
    }

    #[test]
    fn escapes_what_roff_would_read() {
        assert_eq!(escape(r"a\b --x"), r"a\eb \-\-x");
        assert_eq!(md(".hidden\n"), ".PP\n\\&.hidden\n");
    }

    #[test]
    fn markdown_blocks() {
        assert_eq!(
            md("## Files\n\nSee `knock -v` and **this**.\n\n- one\n- two\n  - nested\n"),
            ".SH FILES\n.PP\nSee \\fB\\%knock \\-v\\fR and \\fBthis\\fR.\n\
             .IP \\(bu 2\none\n.IP \\(bu 2\ntwo\n.RS\n.IP \\(bu 2\nnested\n.RE\n"
        );
        assert_eq!(
            md("### Sub `x`\n\n1. a\n2. b\n"),
            ".SS Sub x\n.IP 1. 4\na\n.IP 2. 4\nb\n"
        );
    }

    #[test]
    fn links_outside_keep_their_address() {
        assert_eq!(
            md("[spec](docs/x.md) and [site](https://a.test/)\n"),
            ".PP\nspec and site <https://a.test/>\n"
        );
    }

    #[test]
    fn tables_go_through_tbl() {
        let out = md("| a | b |\n| - | - |\n| `x` | |\n");
        assert!(out.starts_with("'\\\" t\n"), "{out}");
        assert!(
            out.contains(".TS\nbox tab(\t);\nlb lb\nl l.\na\tb\n_\n\\fB\\%x\\fR\t\\&\n.TE\n.sp\n"),
            "{out}"
        );
    }

    #[test]
    fn sections_are_cut_at_the_next_heading_of_their_level() {
        let doc = "# T\n## A\na\n### A1\nx\n## B\nb\n";
        assert_eq!(markdown_section(doc, "A"), Some("## A\na\n### A1\nx\n"));
        assert_eq!(markdown_section(doc, "B"), Some("## B\nb\n"));
        assert_eq!(markdown_section(doc, "C"), None);
    }

    #[test]
    fn help_text_items_and_headings() {
        let mut page = Page::default();
        help_text(
            &mut page,
            "KEYS\nIntro line\nwraps.\n  a = 1     the a\n            goes on\n  b         bee\nAfter.\n\nNext.",
        );
        assert_eq!(
            page.finish(),
            ".SS KEYS\n.PP\nIntro line wraps.\n.TP\n\\fBa = 1\\fR\nthe a\ngoes on\n.TP\n\
             \\fBb\\fR\nbee\n.PP\nAfter.\n.PP\nNext.\n"
        );
    }
}
