//! Typed channels end to end: a system whose channel ends disagree on the protocol is refused
//! by `keel build` with a diagnostic at the channel, and the walkthrough's new component with a
//! new protocol (tests/systems/echo.cdl) builds, boots and answers typed calls.

use system_tests::{boot, keel};

#[test]
fn a_protocol_mismatch_is_refused_at_the_channel() {
    let out = keel(&["build", "--system", "tests/cdl/protocol-mismatch.cdl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cdl::E0206"), "{stderr}");
    // The primary label is the channel's protocol (line 10, column 18).
    assert!(
        stderr.contains("tests/cdl/protocol-mismatch.cdl:10:18"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`hello` (program `hello`) does not serve `server_protocol::Calc`"),
        "{stderr}"
    );
    assert!(stderr.contains("no image was built"), "{stderr}");
    // The checker keeps working: the default system still checks.
    let ok = keel(&["check", "system.cdl"]);
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn a_new_component_with_a_new_protocol_answers() {
    let Some(run) = boot("tests/systems/echo.cdl", 8) else {
        return;
    };
    run.expect_code(124);
    run.line("[echo] echo: up");
    run.in_order(&[
        "[echo-caller] echo-caller: up",
        "[echo-caller] echo-caller: echo 41 -> Echoed { value: 42 }",
    ]);
    // The rest of the default system is unchanged.
    run.line("[client] client: Add { a: 40, b: 2 } -> Sum(42)");
    run.expect_absent("faulted");
    run.expect_absent("panic");
}
