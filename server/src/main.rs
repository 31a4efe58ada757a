//! The `codexcontinue` binary: see [`codexcontinue::cli`].

fn main() -> std::process::ExitCode {
    codexcontinue::cli::main()
}
