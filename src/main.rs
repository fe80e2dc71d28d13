fn main() {
    std::process::exit(sota_bot::cli::main());
}
