//! The default system (`system.cdl` at the workspace root) boots and every component
//! reports that it is up; the client's typed calls to the server get typed answers.

use system_tests::boot;

#[test]
fn every_component_of_the_default_system_is_up() {
    // The default system never ends: it runs until the timeout (exit 124).
    let Some(run) = boot("system.cdl", 8) else {
        return;
    };
    run.expect_code(124);
    for line in [
        "[console] console: up",
        "[supervisor] supervisor: up, supervising 4 components (restart from image)",
        "[hello] hello: up",
        "[server] server: up",
        "[client] client: up",
    ] {
        run.line(line);
    }
    run.in_order(&[
        "[client] client: Add { a: 40, b: 2 } -> Sum(42)",
        "[client] client: Ping { seq: 1 } -> Pong { seq: 1 }",
        "[client] client: Stats -> Stats { answered: 2 }",
    ]);
    run.expect_absent("faulted");
    run.expect_absent("panic");
}
