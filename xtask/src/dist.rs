//! `cargo xtask dist`: the release binaries, shell completions and man pages in `target/dist/`:
//! `bin/` (seamless-resolve, seamless-fingertip), `completions/` (bash, zsh, fish) and
//! `man/man1/`, generated from the programs' own clap definitions.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

const PROGRAMS: [&str; 2] = ["seamless-resolve", "seamless-fingertip"];

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let status = crate::cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "seamless-cli"])
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("building the release binaries failed ({status})");
    }
    let dist = root.join("target").join("dist");
    let bin = dist.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    for program in PROGRAMS {
        let built = root.join("target").join("release").join(program);
        std::fs::copy(&built, bin.join(program))
            .with_context(|| format!("copying {}", built.display()))?;
    }
    write_docs(&dist)?;
    println!("{}", dist.display());
    for entry in walk(&dist)? {
        println!("  {}", entry);
    }
    Ok(())
}

/// Writes the shell completions (`completions/`) and man pages (`man/man1/`) of both programs
/// under `dist`, from their clap definitions.
pub fn write_docs(dist: &Path) -> Result<()> {
    let (completions, man) = (dist.join("completions"), dist.join("man").join("man1"));
    for dir in [&completions, &man] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for program in PROGRAMS {
        let command = || {
            seamless_cli::args::Args::command()
                .name(program)
                .bin_name(program)
                .about(seamless_cli::args::about(program))
        };
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut command(), program, &completions)
                .with_context(|| format!("writing the {shell} completion of {program}"))?;
        }
        let page = man.join(format!("{program}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(command())
            .render(&mut out)
            .with_context(|| format!("rendering the man page of {program}"))?;
        std::fs::write(&page, out).with_context(|| format!("writing {}", page.display()))?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path.display().to_string());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_pages_are_generated() {
        let dir = tempfile::tempdir().unwrap();
        write_docs(dir.path()).unwrap();
        for program in PROGRAMS {
            let page =
                std::fs::read_to_string(dir.path().join(format!("man/man1/{program}.1"))).unwrap();
            // roff escapes `-` as `\-`.
            assert!(
                page.contains(&program.replace('-', "\\-")) && page.contains("output"),
                "{page}"
            );
            let bash =
                std::fs::read_to_string(dir.path().join(format!("completions/{program}.bash")))
                    .unwrap();
            assert!(bash.contains("--project"), "{bash}");
            assert!(dir.path().join(format!("completions/_{program}")).is_file());
            assert!(dir
                .path()
                .join(format!("completions/{program}.fish"))
                .is_file());
        }
    }
}
