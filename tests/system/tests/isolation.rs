//! The isolation tests of issue 3: each boots one system from `tests/systems/` and checks
//! what its components printed. See the `.cdl` files for what each system contains.

use keel_spec::cspace;
use system_tests::{boot, boot_icount, boot_until};

/// (a) A component invoking capability slots it was not granted gets an error; a CPtr
/// outside its CSpace is a capability fault, handled by the supervisor like any fault.
#[test]
fn ungranted_capabilities_give_errors() {
    let Some(run) = boot("tests/systems/capability.cdl", 60) else {
        return;
    };
    run.expect_code(0);
    let ungranted = 7;
    let invalid_capability = 2;
    for (what, slot) in [
        ("protected call", cspace::call(ungranted)),
        ("TCB_Suspend", cspace::child_tcb(0)),
        ("IRQHandler_Ack", cspace::irq(ungranted)),
    ] {
        run.line(&format!(
            "[prober] prober: {what} on ungranted slot {slot} -> seL4 error \
             {invalid_capability} (InvalidCapability)"
        ));
    }
    run.expect_absent("SUCCEEDED");
    run.in_order(&[
        &format!(
            "[prober] prober: notify on ungranted slot {} returned",
            cspace::notify(ungranted)
        ),
        "[prober] prober: invoking CPtr 0x10000000000, outside its CSpace",
        "supervisor: prober faulted: cap fault on CPtr 0x10000000000 (guard mismatch",
        "supervisor: prober restarted (1 of 3, backoff 10 ms)",
        "[prober] prober: restarted after the capability fault",
        "[prober] prober: done",
    ]);
    run.expect_absent("did not fault");
}

/// (b) A component touching an address it has no mapping for faults and is restarted by the
/// supervisor, after its backoff, while the others keep running.
#[test]
fn a_faulting_component_is_restarted_while_others_run() {
    let Some(run) = boot("tests/systems/fault-restart.cdl", 60) else {
        return;
    };
    run.expect_code(0);
    let at = run.in_order(&[
        "[crasher] crasher: up (start 0)",
        "[crasher] crasher: touching unmapped address 0x20000000",
        "[supervisor] supervisor: crasher faulted: VM fault at 0x20000000 (pc 0x",
        "[supervisor] supervisor: crasher restarted (1 of 3, backoff 100 ms)",
        "[crasher] crasher: up (start 1)",
        "[crasher] crasher: recovered after 1 restart(s)",
        "[heartbeat] heartbeat: done",
    ]);
    // The heartbeat beat during the 100 ms backoff and after the restart, and never missed
    // a beat.
    assert!(
        run.count_between(at[3], at[4], "[heartbeat] heartbeat: beat ") >= 2,
        "no heartbeat during the backoff:\n{}",
        run.stdout
    );
    assert!(run.count_between(at[5], at[6], "[heartbeat] heartbeat: beat ") >= 10);
    let beats: Vec<String> = (1..=50).map(|n| format!("heartbeat: beat {n}")).collect();
    run.in_order(&beats.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_absent("crasher: up (start 2)");
    // Restarted from the image: its .data and .bss statics, changed before the fault, are
    // back at their initial values (the runtime copied its pristine data segment back).
    assert_eq!(run.count("[crasher] crasher: statics data 7 bss 0"), 2);
    run.expect_absent("statics data 99");
    run.expect_absent("should not be mapped");
    // The supervisor's record, as management reads it.
    let record =
        run.line("faults: 1, restarts: 1, state: Running, last_fault: Some(LastFault { kind: 6");
    assert!(record > at[5] && record < at[6]);
}

/// (c) A component in a crash loop is held after the configured number of restarts, with
/// its backoff doubling, while the others keep running.
#[test]
fn a_crash_loop_is_held_after_max_restarts() {
    let Some(run) = boot("tests/systems/crash-loop.cdl", 60) else {
        return;
    };
    run.expect_code(0);
    let at = run.in_order(&[
        "[crashloop] crashloop: up (start 0)",
        "supervisor: crashloop faulted: VM fault at 0x20000000",
        "supervisor: crashloop restarted (1 of 2, backoff 20 ms)",
        "[crashloop] crashloop: up (start 1)",
        // A panic is logged, then the runtime faults on purpose at address 0.
        "[crashloop] panic: deliberate panic on start 1 at ",
        "supervisor: crashloop faulted: VM fault at 0x0 (pc 0x",
        "supervisor: crashloop restarted (2 of 2, backoff 40 ms)",
        "[crashloop] crashloop: up (start 2)",
        "supervisor: crashloop faulted: VM fault at 0x20000000",
        "supervisor: crashloop held after 2 restarts",
        "[heartbeat] heartbeat: done",
    ]);
    assert_eq!(run.count("crashloop: up"), 3);
    assert_eq!(run.count("supervisor: crashloop faulted"), 3);
    assert!(run.count_between(at[9], at[10], "[heartbeat] heartbeat: beat ") >= 10);
    // The supervisor's record, as management reads it.
    let record =
        run.line("faults: 3, restarts: 2, state: Held, last_fault: Some(LastFault { kind: 6");
    assert!(record > at[9] && record < at[10]);
}

/// (d) A component that spins forever cannot starve one of equal priority beyond its
/// budget: with 5 ms round-robin budgets, the ticker gets about half the CPU and is never
/// kept off it much longer than one budget.
#[test]
fn a_spinning_component_cannot_starve_its_peer() {
    // Under -icount: the shares are measured by the clock, which must not follow the host.
    let Some(run) = boot_icount("tests/systems/spin.cdl", 120) else {
        return;
    };
    run.expect_code(0);
    run.line("[spinner] spinner: up, spinning");
    let report = run.line("[ticker] ticker: ran ");
    run.line("[ticker] ticker: done");
    let budget_us = 5000;
    let share = run.number(report, "ran ");
    let gaps = run.number(report, "; ");
    let second = run.number(report, "second ");
    // Half the CPU in theory; leave room for the console, the kernel and a busy host.
    assert!(share >= 250, "ticker got {share} permille:\n{}", run.stdout);
    // The spinner really ran in between (round robin), many times.
    assert!(
        gaps >= 20,
        "ticker was preempted only {gaps} times:\n{}",
        run.stdout
    );
    // One slow host moment may make one gap long; the second longest must still be about
    // one budget.
    assert!(
        second <= 3 * budget_us,
        "ticker was kept off the CPU for {second} us (budget {budget_us} us):\n{}",
        run.stdout
    );
}

/// A server that faults in the middle of a protected call does not leave its caller stuck:
/// the restarted server's runtime answers the interrupted call with `label::RESTARTED`, and
/// the caller's next calls are served.
#[test]
fn a_caller_of_a_faulting_server_gets_an_answer() {
    // The client and the server never end the run: it stops (exit 0) once the client's last
    // call was answered; the timeout would exit 124 and fail.
    let last = "[client] client: Stats -> Stats { answered: 1 }";
    let restarted = "[server] server: up (flaky, start 1)";
    let Some(run) = boot_until("tests/systems/server-restart.cdl", 30, &[restarted, last]) else {
        return;
    };
    run.expect_code(0);
    run.in_order(&[
        "[server] server: faulting in the middle of a call",
        "supervisor: server faulted: VM fault at 0x20000000",
        "supervisor: server restarted (1 of 3, backoff 10 ms)",
        restarted,
    ]);
    run.in_order(&[
        "[client] client: Add { a: 40, b: 2 } failed: the server died (restarted) during the call",
        "[client] client: Ping { seq: 1 } -> Pong { seq: 1 }",
        last,
    ]);
}
