//! What the examples' binaries share on the command line: a database path
//! as the only argument, `--help`, and errors a person can act on.

use std::error::Error;
use std::future::Future;
use std::process::ExitCode;

/// The whole `main` of an example that takes a database path: reads it (or
/// answers `--help`), runs `body` on it, and exits: 0, or 1 with the error
/// printed for a person, naming the database.
pub async fn main_with_database<F, Fut>(default: &str, usage: &str, body: F) -> ExitCode
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), Box<dyn Error>>>,
{
    let path = match database_argument(default, usage) {
        Ok(path) => path,
        Err(exit) => return exit,
    };
    let result = body(path.clone()).await;
    finish(&path, result)
}

/// The database path of an example that takes only that (`default` when
/// none is given): `Err` with the exit code once `--help` was answered or a
/// wrong argument was reported with `usage`.
///
/// # Errors
///
/// The exit code to return: success after `--help`, 2 after a wrong
/// argument.
fn database_argument(default: &str, usage: &str) -> Result<String, ExitCode> {
    let mut path = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{usage}");
                return Err(ExitCode::SUCCESS);
            }
            flag if flag.starts_with('-') => {
                eprintln!("error: unknown option {flag}\n\n{usage}");
                return Err(ExitCode::from(2));
            }
            file if path.is_none() => path = Some(file.to_owned()),
            extra => {
                eprintln!("error: one database only, not also {extra:?}\n\n{usage}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(path.unwrap_or_else(|| default.to_owned()))
}

/// The exit of an example's run: its error printed for a person (`Display`,
/// naming the database), and a non-zero code.
fn finish(path: &str, result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} (database {path}; pass another path as the first argument)");
            ExitCode::FAILURE
        }
    }
}
