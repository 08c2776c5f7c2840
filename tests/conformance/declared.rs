//! The tests the conformance suite declares, read from its source: every `t("name", ...)` and
//! `t_long("name", ...)` inside a `TESTS: &[Test] = &[ ... ];` array of a `src/*.rs` file.
//!
//! Shared (by `#[path]`) between the suite's build script, which compiles the list into the
//! suite so that its closing line fails when a declared test did not run, and `keel
//! conformance`, which checks the printed `PASS`/`FAIL` lines against the same list: a group
//! dropped from `all_tests()` (or a module never registered) fails the run instead of
//! shrinking it. Dependency-free so that both can include it.

/// The test names declared in one source file, in order: the entries of every array whose
/// declaration reads `TESTS: &[<path::>Test] = &[`.
pub fn declared_in(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("TESTS: &[") {
        rest = &rest[at + "TESTS: &[".len()..];
        let Some(eq) = rest.find("] = &[") else {
            break;
        };
        let ty = &rest[..eq];
        if !(ty == "Test" || ty.ends_with("::Test")) || ty.contains(char::is_whitespace) {
            continue;
        }
        rest = &rest[eq + "] = &[".len()..];
        let end = rest.find("];").unwrap_or(rest.len());
        names.extend(entries(&rest[..end]));
        rest = &rest[end..];
    }
    names
}

/// The first string literal after every `t(` / `t_long(` that starts a word, outside `//`
/// comments (a commented-out test is not declared).
fn entries(array: &str) -> Vec<String> {
    let array: String = array
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (i, _) in array.match_indices('(') {
        let head = &array[..i];
        let word_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        let word = &head[word_start..];
        if word != "t" && word != "t_long" {
            continue;
        }
        let after = array[i + 1..].trim_start();
        let Some(lit) = after.strip_prefix('"') else {
            continue;
        };
        if let Some(close) = lit.find('"') {
            out.push(lit[..close].to_string());
        }
    }
    out
}

/// Every test declared in the `.rs` files of `dir` (sorted by file name, then in order).
pub fn declared_in_dir(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let mut names = Vec::new();
    for f in files {
        names.extend(declared_in(&std::fs::read_to_string(&f)?));
    }
    Ok(names)
}
