fn main() -> std::process::ExitCode {
    runnerform::cli::main()
}
