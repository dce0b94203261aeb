//! The Python package (`python/`): built as a wheel with maturin, as it is shipped (linked
//! by zig against glibc 2.17, so it installs on any x86_64 Linux of the last decade), and
//! installed with pip into a virtual environment, as a user installs it; then its tests
//! (`python/tests`, pytest) run against the `neardup` built for these tests.
//!
//! Needs a Python with maturin, ziglang and pytest (`NEARDUP_PYTHON`, else
//! `target/py-venv/bin/python`, which `.ci/run` creates). Skipped with a note otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtual environment's Python, if it has maturin, ziglang and pytest.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("NEARDUP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/py-venv/bin/python"));
    let ready = Command::new(&python)
        .args(["-c", "import maturin, pytest, ziglang"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        eprintln!(
            "note: no Python with maturin, ziglang and pytest ({}; set NEARDUP_PYTHON or run .ci/run): \
             skipping the Python package's tests",
            python.display()
        );
        return None;
    }
    Some(python)
}

/// Runs `command` and returns its output; fails the test with both streams if it fails.
fn succeed(command: &mut Command, what: &str) -> std::process::Output {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn python_package_passes_its_tests() {
    let Some(python) = python() else { return };
    let bin = python.parent().expect("the venv's bin directory");
    let venv = bin.parent().expect("the venv");
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    // In the project's target directory (Cargo does not hold the build directory's lock
    // while tests run); zig builds for an explicit target, so into a directory of its own.
    let wheels = root().join("target/py-wheel");
    let _ = std::fs::remove_dir_all(&wheels);
    succeed(
        Command::new(bin.join("maturin"))
            .args(["build", "--quiet", "--profile", "dev"])
            .args(["--zig", "--compatibility", "manylinux2014", "--out"])
            .arg(&wheels)
            .arg("--manifest-path")
            .arg(root().join("python/Cargo.toml"))
            .env("VIRTUAL_ENV", venv)
            .env("PATH", &path),
        "maturin build",
    );
    let wheel: Vec<PathBuf> = std::fs::read_dir(&wheels)
        .expect("maturin wrote a wheel")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        wheel.len() == 1 && wheel[0].extension().is_some_and(|e| e == "whl"),
        "one wheel expected: {wheel:?}"
    );
    let name = wheel[0].file_name().unwrap().to_string_lossy();
    assert!(
        name.contains("-abi3-manylinux2014_"),
        "the wheel should install on glibc 2.17 and every Python from 3.10: {name}"
    );
    succeed(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--force-reinstall", "--no-deps"])
            .arg(&wheel[0]),
        "pip install",
    );
    let tested = succeed(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root().join("python/tests"))
            .current_dir(root())
            .env("NEARDUP_BIN", env!("CARGO_BIN_EXE_neardup")),
        "the Python package's tests",
    );
    let report = String::from_utf8_lossy(&tested.stdout);
    // Skips are for a missing NEARDUP_DATA alone; anything else skipped is a fault here.
    let skipped = report.matches("skipped").count();
    let data = std::env::var_os("NEARDUP_DATA").is_some();
    assert!(
        skipped == 0 || !data,
        "tests were skipped with NEARDUP_DATA set:\n{report}"
    );
    eprintln!("{}", report.lines().last().unwrap_or_default());
}
