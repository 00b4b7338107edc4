//! seamless-resolve: not implemented yet (see the project issue for the binaries).

fn main() {
    eprintln!("seamless-resolve: not implemented yet in this build");
    std::process::exit(1);
}
