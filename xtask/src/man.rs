//! Man pages: clap_mangen renders what clap knows (name, synopsis, description, options);
//! the after-help text becomes DETAILS, its "Exit status:" paragraph EXIT STATUS; the parts
//! clap cannot know come from Markdown files in `packaging/man/` (FILES, EXAMPLES, SEE
//! ALSO...), which may include sections of the docs with
//! `<!-- include: PATH "Heading" -->`, so each fact keeps one home.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Command;
use clap_mangen::Man;

use crate::roff::{self, Page};

/// What every page's title line carries besides its name and section.
pub(crate) struct Meta {
    /// `YYYY-MM-DD`.
    pub(crate) date: String,
    /// `knock suite 0.1.0`.
    pub(crate) source: String,
}

/// One page written: its file name and roff.
pub(crate) struct Written {
    pub(crate) file: String,
    pub(crate) roff: String,
}

/// The manual section's title for the `.TH` line.
fn manual(section: &str) -> &'static str {
    match section {
        "1" => "User Commands",
        "5" => "File Formats",
        "8" => "System Administration",
        _ => "",
    }
}

/// Pages for `cmd` and, recursively, each of its subcommands (`knock-profile-save(1)`),
/// with `packaging/man/<file>.md` added to a page where it exists.
pub(crate) fn command_pages(
    cmd: Command,
    section: &str,
    meta: &Meta,
    root: &Path,
) -> Result<Vec<Written>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, section, meta, root, &mut pages)?;
    Ok(pages)
}

fn walk(
    cmd: &Command,
    section: &str,
    meta: &Meta,
    root: &Path,
    pages: &mut Vec<Written>,
) -> Result<()> {
    pages.push(command_page(cmd, section, meta, root)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, section, meta, root, pages)?;
    }
    Ok(())
}

/// The page's name: `knock`, `knock-profile`, `knock-profile-save`.
fn page_name(cmd: &Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

fn command_page(cmd: &Command, section: &str, meta: &Meta, root: &Path) -> Result<Written> {
    let name = page_name(cmd);
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section(section)
        .date(&meta.date)
        .source(&meta.source)
        .manual(manual(section));
    let mut page = Page::default();
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    if cmd
        .get_arguments()
        .any(|a| !a.is_hide_set() && !a.is_positional())
    {
        man.render_options_section(&mut roff)?;
    }
    page.raw(&String::from_utf8(roff)?);

    let subs: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subs.is_empty() {
        page.section("Commands");
        for sub in subs {
            page.request("TP", "");
            page.text(&format!(
                "\\fB{}\\fR(\\fI{section}\\fR)",
                roff::escape(&page_name(sub))
            ));
            if let Some(about) = sub.get_about() {
                page.text(&roff::escape(&about.to_string()));
            }
        }
    }

    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let (details, exit) = split_exit_status(&after);
    if !details.trim().is_empty() {
        page.section("Details");
        roff::help_text(&mut page, &details);
    }
    if let Some(exit) = exit {
        page.section("Exit status");
        page.paragraph();
        page.text(&roff::escape(&exit));
    }

    let file = format!("{name}.{section}");
    let extra = root.join("packaging/man").join(format!("{file}.md"));
    if extra.exists() {
        let md = read_markdown(&extra, root)?;
        roff::markdown(&mut page, &md);
    }
    Ok(Written {
        file,
        roff: page.finish(),
    })
}

/// The after-help text without its `Exit status: ...` paragraph, and that paragraph's text
/// (one home: `--help` and the man page say the same).
fn split_exit_status(after: &str) -> (String, Option<String>) {
    let mut rest = Vec::new();
    let mut exit = None;
    for para in after.split("\n\n") {
        match para.strip_prefix("Exit status: ") {
            Some(text) => {
                let joined: Vec<&str> = text.lines().map(str::trim).collect();
                exit = Some(joined.join(" "));
            }
            None => rest.push(para),
        }
    }
    (rest.join("\n\n"), exit)
}

/// A page written entirely in Markdown (the section-5 page), with its title line.
pub(crate) fn markdown_page(
    name: &str,
    section: &str,
    meta: &Meta,
    root: &Path,
) -> Result<Written> {
    let file = format!("{name}.{section}");
    let md = read_markdown(&root.join("packaging/man").join(format!("{file}.md")), root)?;
    let mut page = Page::default();
    page.request(
        "TH",
        &format!(
            "{} {section} \"{}\" \"{}\" \"{}\"",
            roff::escape(&name.to_uppercase()),
            meta.date,
            meta.source,
            manual(section)
        ),
    );
    roff::markdown(&mut page, &md);
    Ok(Written {
        file,
        roff: page.finish(),
    })
}

/// Reads a Markdown file of `packaging/man/`, replacing each line
/// `<!-- include: PATH "Heading" -->` with that `##` section of PATH (relative to the
/// repository root).
fn read_markdown(path: &Path, root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        let Some(spec) = line
            .trim()
            .strip_prefix("<!-- include:")
            .and_then(|s| s.strip_suffix("-->"))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let at = || format!("{}:{}", path.display(), n + 1);
        let Some((file, heading)) = spec.trim().split_once(' ') else {
            bail!("{}: write <!-- include: PATH \"Heading\" -->", at());
        };
        let heading = heading.trim().trim_matches('"');
        let doc_path = root.join(file);
        let doc = std::fs::read_to_string(&doc_path)
            .with_context(|| format!("{}: read {}", at(), doc_path.display()))?;
        let Some(section) = roff::markdown_section(&doc, heading) else {
            bail!("{}: {file} has no section \"## {heading}\"", at());
        };
        out.push_str(section);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_status_paragraph_is_taken_out() {
        let (rest, exit) = split_exit_status("A.\n\nExit status: 0 ok,\n1 not.\n\nB.");
        assert_eq!(rest, "A.\n\nB.");
        assert_eq!(exit.as_deref(), Some("0 ok, 1 not."));
    }
}
