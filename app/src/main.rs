fn main() -> std::process::ExitCode {
    ahlt::cli::main()
}
