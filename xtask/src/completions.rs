//! Shell completions: clap_complete writes them from the command trees; for `knock`, a
//! hand-written hook per shell (`packaging/completions/knock.{bash,zsh,fish}`) completes
//! profile names where clap has only files to offer, by asking `knock profile list
//! --names`, so names come from the very directory knock would use.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Command;
use clap_complete::Shell;

/// The completion files of one program: (shell, file name, script).
pub(crate) type Scripts = Vec<(Shell, String, String)>;

/// File names as bash-completion, zsh and fish look them up.
fn file_name(shell: Shell, bin: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        _ => bin.to_string(),
    }
}

fn generate(shell: Shell, cmd: &Command, bin: &str) -> Result<String> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd.clone(), bin, &mut out);
    Ok(String::from_utf8(out)?)
}

/// bash, zsh and fish scripts for `knockd-lite`, as clap writes them.
pub(crate) fn plain(cmd: &Command, bin: &str) -> Result<Scripts> {
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| Ok((shell, file_name(shell, bin), generate(shell, cmd, bin)?)))
        .collect()
}

/// The commands whose positional NAME is an existing profile.
const PROFILE_NAME_ARGS: [&[&str]; 3] =
    [&["profile"], &["profile", "show"], &["profile", "remove"]];

/// bash, zsh and fish scripts for `knock`, with the profile-name hooks.
pub(crate) fn knock(cmd: &Command, root: &Path) -> Result<Scripts> {
    let hook = |ext: &str| -> Result<String> {
        let path = root
            .join("packaging/completions")
            .join(format!("knock.{ext}"));
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let bash = generate(Shell::Bash, cmd, "knock")? + "\n" + &hook("bash")?;
    let fish = generate(Shell::Fish, cmd, "knock")?;
    if !fish.contains("function __fish_knock_using_subcommand") {
        bail!(
            "clap_complete's fish script no longer defines __fish_knock_using_subcommand, which packaging/completions/knock.fish uses"
        );
    }
    let fish = fish + "\n" + &hook("fish")?;
    let zsh = zsh_with_profiles(&generate(Shell::Zsh, cmd, "knock")?, cmd, &hook("zsh")?)?;
    Ok(vec![
        (Shell::Bash, file_name(Shell::Bash, "knock"), bash),
        (Shell::Zsh, file_name(Shell::Zsh, "knock"), zsh),
        (Shell::Fish, file_name(Shell::Fish, "knock"), fish),
    ])
}

/// zsh's script completes each profile NAME with `_knock_profile_names` (defined by the
/// hook, inserted before the script's last lines) instead of `_default`. The spec lines are
/// found from the command tree, and every one must be found: a clap_complete that writes
/// them differently fails the build here instead of shipping a script without names.
fn zsh_with_profiles(script: &str, cmd: &Command, hook: &str) -> Result<String> {
    let mut script = script.to_string();
    for path in PROFILE_NAME_ARGS {
        let mut sub = cmd;
        for word in path {
            sub = sub
                .find_subcommand(word)
                .with_context(|| format!("no subcommand {path:?}"))?;
        }
        let arg = sub
            .get_positionals()
            .find(|a| a.get_id() == "name")
            .with_context(|| format!("{path:?} has no positional NAME"))?;
        let help = zsh_escape(&arg.get_help().map(ToString::to_string).unwrap_or_default());
        let from = format!("':name -- {help}:_default'");
        let to = format!("':name -- {help}:_knock_profile_names'");
        if !script.contains(&from) {
            bail!(
                "zsh completion: no line {from} for knock {}",
                path.join(" ")
            );
        }
        script = script.replace(&from, &to);
    }
    let tail = "\nif [ \"$funcstack[1]\" = \"_knock\" ]; then";
    let Some(at) = script.rfind(tail) else {
        bail!("zsh completion: the script no longer ends with {tail:?}");
    };
    script.insert_str(at + 1, &format!("{hook}\n"));
    Ok(script)
}

/// Help text as clap_complete quotes it in zsh specs.
fn zsh_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
        .replace('$', "\\$")
        .replace('`', "\\`")
        .replace('\n', " ")
}
