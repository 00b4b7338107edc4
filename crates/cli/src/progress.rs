//! How the binaries show what the launcher does: on a terminal, a spinner with the service's
//! name; elsewhere, one line per step on stderr. (The libraries never print.)

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use seamless_launcher::{LaunchEvent, Launcher, ProgressCallback};

/// The launcher of the binaries: `$HOME`'s state, progress rendered on stderr.
pub fn launcher() -> Launcher {
    seamless_activation::Settings::current()
        .launcher()
        .with_progress(render())
}

fn render() -> ProgressCallback {
    if !std::io::stderr().is_terminal() {
        return Arc::new(|event: &LaunchEvent| eprintln!("{event}"));
    }
    let spinner: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Arc::new(move |event: &LaunchEvent| {
        let mut slot = spinner.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            LaunchEvent::Launching { service, .. } => {
                let bar = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(format!("launching {service}"));
                bar.enable_steady_tick(Duration::from_millis(100));
                *slot = Some(bar);
            }
            LaunchEvent::Ready { .. } => match slot.take() {
                Some(bar) => bar.finish_with_message(event.to_string()),
                None => eprintln!("{event}"),
            },
            LaunchEvent::Waiting { key, .. } => match slot.as_ref() {
                Some(bar) => bar.set_message(format!("waiting for {key} to report running")),
                None => eprintln!("{event}"),
            },
            _ => match slot.as_ref() {
                Some(bar) => bar.println(event.to_string()),
                None => eprintln!("{event}"),
            },
        }
    })
}
