//! The `rempart` binary: everything lives in the library; see `rempart::cli`.

fn main() -> std::process::ExitCode {
    rempart::cli::main()
}
