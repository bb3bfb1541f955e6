fn main() -> std::process::ExitCode {
    eprintln!("ahlt-operator: the controller is not implemented yet");
    std::process::ExitCode::FAILURE
}
