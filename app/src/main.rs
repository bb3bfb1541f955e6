fn main() -> std::process::ExitCode {
    ahlt::memory::tune_allocator();
    ahlt::cli::main()
}
