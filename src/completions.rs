//! The `completions` and `man` commands: shell completions (clap_complete) and man pages
//! (clap_mangen), generated from the same clap definitions as `--help`, so they cannot drift.
//!
//! The Debian package ships copies in `deploy/debian/generated/` (plain `cargo deb` packages
//! files that exist before the build); a test here fails when they differ from what the code
//! generates. Regenerate them with
//! `CDSS_UPDATE_PACKAGE_ASSETS=1 cargo test --lib completions`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::{Cli, Command};

/// The binary's name, as the completions and man pages call it.
pub(crate) const BIN: &str = "cdss-precheck-exporter";

/// Shells whose completion scripts the Debian package installs, with where they go (the test
/// that keeps `deploy/debian/generated/` in step writes them).
#[cfg(test)]
const PACKAGED_SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "completions/cdss-precheck-exporter.bash"),
    (Shell::Zsh, "completions/_cdss-precheck-exporter"),
    (Shell::Fish, "completions/cdss-precheck-exporter.fish"),
];

/// Handles `completions` and `man`; `None` for every other command.
pub(crate) fn dispatch(cli: &Cli) -> Option<ExitCode> {
    let out = match &cli.command {
        Some(Command::Completions { shell }) => completion(*shell),
        Some(Command::Man { command }) => match man_page(command.as_deref()) {
            Some(page) => page,
            None => {
                eprintln!(
                    "error: no command {:?}; man pages exist for: {}",
                    command.as_deref().unwrap_or_default(),
                    subcommands().join(", ")
                );
                return Some(ExitCode::from(crate::cli::EXIT_CONFIG));
            }
        },
        _ => return None,
    };
    let mut stdout = std::io::stdout().lock();
    Some(match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::from(crate::cli::EXIT_FAILURE)
        }
    })
}

/// The completion script for `shell`.
pub(crate) fn completion(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    out
}

/// The names of the commands that get their own man page (`cdss-precheck-exporter-NAME(1)`).
fn subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The program's man page (`None`), or a command's (`Some("check")`); `None` if no such command.
pub(crate) fn man_page(command: Option<&str>) -> Option<Vec<u8>> {
    // The pages document `help` as --help; a `cdss-precheck-exporter-help(1)` would not exist.
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Propagates the global flags (--config.file, --log.*) into the commands.
    cli.build();
    let cmd = match command {
        None => cli,
        Some(name) => {
            let sub = cli.find_subcommand(name)?.clone();
            sub.bin_name(format!("{BIN} {name}"))
                .display_name(format!("{BIN}-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail; if it ever did, there is no page.
    clap_mangen::Man::new(cmd)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .ok()?;
    Some(out)
}

/// Every generated file the Debian package installs: its path under `deploy/debian/generated/`
/// and its content. Man pages first (`man/NAME.1`), then the completion scripts.
#[cfg(test)]
fn packaged_assets() -> Vec<(String, Vec<u8>)> {
    let mut assets: Vec<(String, Vec<u8>)> = man_page(None)
        .map(|page| (format!("man/{BIN}.1"), page))
        .into_iter()
        .collect();
    for name in subcommands() {
        if let Some(page) = man_page(Some(&name)) {
            assets.push((format!("man/{BIN}-{name}.1"), page));
        }
    }
    for (shell, path) in PACKAGED_SHELLS {
        assets.push((path.to_string(), completion(shell)));
    }
    assets
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn completions_name_the_binary_and_its_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let out = completion(shell);
            let s = text(&out);
            assert!(s.contains(BIN), "{shell}: names {BIN}");
            for flag in ["config.file", "web.listen-address", "log.level", "cluster"] {
                assert!(s.contains(flag), "{shell}: completes --{flag}");
            }
            for command in ["check", "completions", "man"] {
                assert!(s.contains(command), "{shell}: completes {command}");
            }
        }
        assert!(text(&completion(Shell::Bash)).contains("complete -F"));
    }

    #[test]
    fn man_pages_name_the_binary_and_its_flags() {
        let page = man_page(None).unwrap();
        let s = text(&page);
        assert!(s.starts_with(".ie") || s.contains(".TH"), "roff");
        assert!(s.contains(&format!(".TH {BIN} 1")), "title");
        for flag in [
            "config.file",
            "config.check",
            "web.listen\\-address",
            "log.format",
        ] {
            assert!(s.contains(flag), "main page documents --{flag}");
        }
        assert!(
            s.contains(r"cdss\-precheck\-exporter\-check(1)"),
            "points at the check page"
        );
        let check = man_page(Some("check")).unwrap();
        let s = text(&check);
        assert!(s.contains(&format!(".TH {BIN}-check 1")), "check title");
        assert!(!text(&page).contains("help(1)"), "no page for `help`");
        for flag in ["\\-\\-cluster", "\\-\\-all", "\\-\\-wait", "\\-\\-json"] {
            assert!(s.contains(flag), "check page documents {flag}");
        }
        assert!(s.contains("Exit codes"), "check page has the exit codes");
        assert!(man_page(Some("nope")).is_none());
        assert!(man_page(Some("help")).is_none());
    }

    /// The copies `cargo deb` packages are what the code generates now.
    #[test]
    fn packaged_assets_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/debian/generated");
        let update = std::env::var_os("CDSS_UPDATE_PACKAGE_ASSETS").is_some();
        let mut stale = Vec::new();
        for (path, content) in packaged_assets() {
            assert!(!content.is_empty(), "{path} is empty");
            let file = dir.join(&path);
            if update {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &content).unwrap();
            } else if std::fs::read(&file).ok().as_deref() != Some(&content[..]) {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "deploy/debian/generated/ is out of date ({}): run \
             `CDSS_UPDATE_PACKAGE_ASSETS=1 cargo test --lib completions` and commit the result",
            stale.join(", ")
        );
    }
}
