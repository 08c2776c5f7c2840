//! The default system (`system.cdl` at the workspace root) boots and every component
//! reports that it is up; the client's typed calls to the server get typed answers.

use system_tests::boot_until;

#[test]
fn every_component_of_the_default_system_is_up() {
    // The default system never ends: the run stops (exit 0) once every line below was
    // printed; the timeout would exit 124 and fail.
    let up = [
        "[console] console: up",
        "[supervisor] supervisor: up, supervising 4 components (restart from image)",
        "[hello] hello: up",
        "[server] server: up",
        "[client] client: up",
    ];
    let calls = [
        "[client] client: Add { a: 40, b: 2 } -> Sum(42)",
        "[client] client: Ping { seq: 1 } -> Pong { seq: 1 }",
        "[client] client: Stats -> Stats { answered: 2 }",
    ];
    let markers: Vec<&str> = up.iter().chain(&calls).copied().collect();
    let Some(run) = boot_until("system.cdl", 30, &markers) else {
        return;
    };
    run.expect_code(0);
    for line in up {
        run.line(line);
    }
    run.in_order(&calls);
    run.expect_absent("faulted");
    run.expect_absent("panic");
}
