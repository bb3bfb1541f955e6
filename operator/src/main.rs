fn main() -> std::process::ExitCode {
    ahlt_operator::cli::main()
}
