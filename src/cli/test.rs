//! `test`: the policy test cases in `rules/tests/`, each run as `serve` would decide it.

use std::path::Path;

use crate::casebook;

/// Prints `ok` or `FAIL` with `FILE:LINE: name` per case (and the explain of a failing case),
/// then the counts; 0 when every case passed, 1 otherwise.
pub fn run(config: &Path) -> anyhow::Result<u8> {
    let (settings, policy) = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let files = casebook::files(&settings.rules_dir);
    if files.is_empty() {
        println!(
            "no test cases in {}",
            settings.rules_dir.join("tests").display()
        );
        return Ok(1);
    }
    let cases = match casebook::load(&files) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s) in the test cases", problems.len());
            return Ok(1);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for case in cases {
        let ran = casebook::run(&policy, case, settings.limits.max_depth);
        let at = format!("{}:{}", ran.case.file.display(), ran.case.line);
        if ran.failures.is_empty() {
            passed += 1;
            println!("ok   {at}: {}", ran.case.name);
            continue;
        }
        failed += 1;
        println!("FAIL {at}: {}", ran.case.name);
        for f in &ran.failures {
            println!("       {f}");
        }
        if let Some(decided) = &ran.decided {
            println!("     explain ({} {}):", ran.case.method, ran.case.target);
            for line in decided.to_text().lines() {
                println!("       {line}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(u8::from(failed > 0))
}
