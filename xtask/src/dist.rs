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
    let (bin, completions, man) = (
        dist.join("bin"),
        dist.join("completions"),
        dist.join("man").join("man1"),
    );
    for dir in [&bin, &completions, &man] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for program in PROGRAMS {
        let built = root.join("target").join("release").join(program);
        std::fs::copy(&built, bin.join(program))
            .with_context(|| format!("copying {}", built.display()))?;
        let command = || {
            seamless_cli::args::Args::command()
                .name(program)
                .bin_name(program)
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
    println!("{}", dist.display());
    for entry in walk(&dist)? {
        println!("  {}", entry);
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
