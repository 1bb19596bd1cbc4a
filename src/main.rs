// The KDL parser allocates on every backtrack; mimalloc parses large files faster than the
// system allocator (see benches/validate.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    runnerform::cli::main()
}
