//! The conformance closing-line parser and the BENCH-line parser, table and JSON.

use keel::report::*;

#[test]
fn closing_line() {
    assert_eq!(
        parse_closing_line("42 passed, 0 failed"),
        Some(Closing {
            passed: 42,
            failed: 0,
            declared: None
        })
    );
    assert_eq!(
        parse_closing_line("40 passed, 3 failed, 1 skipped\r"),
        Some(Closing {
            passed: 40,
            failed: 3,
            declared: None
        })
    );
    assert_eq!(parse_closing_line("test foo: 1 passed, 0 failed"), None);
    assert_eq!(parse_closing_line(" 1 passed, 0 failed"), None);
    assert_eq!(parse_closing_line("1 passed,0 failed"), None);
    assert_eq!(parse_closing_line("x passed, 0 failed"), None);
    assert_eq!(parse_closing_line("1 passed, 0 failedness"), None);
    assert_eq!(parse_closing_line(""), None);

    let out = "boot\nok 1 call\n1 passed, 1 failed\nmore\n41 passed, 0 failed\n[kernel] halt\n";
    assert_eq!(
        find_closing_line(out),
        Some(Closing {
            passed: 41,
            failed: 0,
            declared: None
        })
    );
    assert_eq!(find_closing_line("no summary here\n"), None);
    assert_eq!(
        parse_closing_line("84 passed, 0 failed, 86 declared"),
        Some(Closing {
            passed: 84,
            failed: 0,
            declared: Some(86)
        })
    );
    assert_eq!(
        parse_closing_line("84 passed, 0 failed, 86 skipped").and_then(|c| c.declared),
        None
    );
}

#[test]
fn bench_lines() {
    assert_eq!(
        parse_bench_line("BENCH ipc_call_reply_rtt 812 insns"),
        Some(Ok(BenchResult {
            name: "ipc_call_reply_rtt".into(),
            value: 812.0,
            unit: "insns".into()
        }))
    );
    assert_eq!(
        parse_bench_line("BENCH null_syscall 101.5 insns\r"),
        Some(Ok(BenchResult {
            name: "null_syscall".into(),
            value: 101.5,
            unit: "insns".into()
        }))
    );
    assert_eq!(parse_bench_line("BENCHMARKS follow"), None);
    assert_eq!(parse_bench_line("[bench] BENCH x 1 y"), None);
    assert!(matches!(parse_bench_line("BENCH x 1"), Some(Err(_))));
    assert!(matches!(
        parse_bench_line("BENCH x one insns"),
        Some(Err(_))
    ));
    assert!(matches!(
        parse_bench_line("BENCH x 1 insns extra"),
        Some(Err(_))
    ));

    let (results, problems) =
        parse_bench_output("hello\nBENCH a 1 insns\nBENCH broken\nBENCH b 2 cycles\n");
    assert_eq!(results.len(), 2);
    assert_eq!(problems.len(), 1);
}

#[test]
fn targets_table_and_json() {
    let results = vec![
        BenchResult {
            name: "ipc_call_reply_rtt".into(),
            value: 1004.0,
            unit: "insns".into(),
        },
        BenchResult {
            name: "null_syscall".into(),
            value: 90.0,
            unit: "insns".into(),
        },
        BenchResult {
            name: "kernel_loaded_size".into(),
            value: 81920.0,
            unit: "bytes".into(),
        },
    ];
    let judged = judge(&results);
    assert_eq!(judged[0].ok, Some(false));
    assert_eq!(judged[1].ok, None);
    assert_eq!(judged[2].ok, Some(true));
    // seL4's round trip is known (502: ratio 2.0), its null syscall from the oracle run
    // (266 less the 2 counter-read instructions), and sizes are not compared.
    assert_eq!(judged[0].ratio, Some(2.0));
    assert!(matches!(
        judged[1].sel4,
        Some(Sel4Figure::Known { value: 264.0, .. })
    ));
    assert_eq!(judged[1].ratio, Some(90.0 / 264.0));
    assert_eq!(judged[2].sel4, None);

    let warn = missed_target_warning(&judged[0]).unwrap();
    assert_eq!(
        warn,
        "WARN: ipc_call_reply_rtt = 1004 insns misses its target <= 450 insns"
    );
    assert!(missed_target_warning(&judged[1]).is_none());
    assert!(missed_target_warning(&judged[2]).is_none());

    let table = render_table(&judged);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("name") && lines[0].contains("seL4"));
    assert!(lines[1].contains("ipc_call_reply_rtt") && lines[1].contains(" 502 "));
    assert!(lines[1].contains(" 2.00 ") && lines[1].ends_with("NO"));
    assert!(lines[2].contains(" 264 ") && lines[2].contains(" 0.34 "));
    assert!(lines[3].contains("<= 262144 bytes") && lines[3].ends_with("yes"));
    assert!(lines[4].starts_with("seL4: real seL4 16.0.0"));

    let json = to_json(&judged);
    assert_eq!(
        json,
        serde_json::json!({"results": [
            {"name": "ipc_call_reply_rtt", "value": 1004, "unit": "insns",
             "target": "<= 450 insns", "ok": false, "sel4": 502, "ratio": 2.0},
            {"name": "null_syscall", "value": 90, "unit": "insns", "target": null, "ok": null,
             "sel4": 264, "ratio": 0.341},
            {"name": "kernel_loaded_size", "value": 81920, "unit": "bytes",
             "target": "<= 262144 bytes", "ok": true, "sel4": null, "ratio": null},
        ]})
    );
}

#[test]
fn kernel_text_is_the_executable_segments() {
    use keel::elf::{write_elf, OutSegment, EM_AARCH64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
    let seg = |vaddr: u64, flags: u32, size: usize, memsz: u64| OutSegment {
        p_type: PT_LOAD,
        p_flags: flags,
        p_vaddr: vaddr,
        p_paddr: vaddr,
        p_memsz: memsz,
        p_align: 0x1000,
        data: vec![0; size],
    };
    let elf = write_elf(
        ET_EXEC,
        EM_AARCH64,
        0x4020_0000,
        &[
            seg(0x4020_0000, PF_R | PF_X, 0x3000, 0x3000),
            seg(0x4020_3000, PF_R, 0x1000, 0x1000),
            seg(0x4020_4000, PF_R | PF_W, 0x100, 0x2000),
        ],
    );
    assert_eq!(kernel_text_size(&elf).unwrap(), 0x3000);
    assert!(kernel_text_size(b"not an ELF").is_err());
    // A kernel with 128 KiB of code meets the target; one byte more misses it.
    for (size, ok) in [(131_072.0, true), (131_073.0, false)] {
        let j = judge(&[BenchResult {
            name: "kernel_text_size".into(),
            value: size,
            unit: "bytes".into(),
        }]);
        assert_eq!(j[0].ok, Some(ok));
    }
}

#[test]
fn a_wrong_unit_misses_the_target() {
    let judged = judge(&[BenchResult {
        name: "ipc_call_reply_rtt".into(),
        value: 10.0,
        unit: "us".into(),
    }]);
    assert_eq!(judged[0].ok, Some(false));
}

#[test]
fn declared_tests_are_read_from_the_sources() {
    let src = r#"
pub const TESTS: &[Test] = &[
    t("a_one", one),
    t(
        "a_two",
        two,
    ),
    // t("a_disabled", three),
    t_long("a_long", || long(3), 45_000),
    not_t("x", y),
];
fn t(name: &str) {}
static mut TESTS: &[Test] = &[];
"#;
    assert_eq!(
        declared::declared_in(src),
        ["a_one", "a_two", "a_long"].map(String::from)
    );
    let qualified = "pub const TESTS: &[harness::Test] = &[t(\"q\", f)];\n\
                     const OTHER_TESTS: &[u8] = &[1];\nconst X: &[Test] = &[t(\"no\", f)];";
    assert_eq!(declared::declared_in(qualified), ["q".to_string()]);
}

#[test]
fn every_declared_test_must_pass_once() {
    let declared: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let good = "PASS a\nPASS b\r\nPASS c\n3 passed, 0 failed, 3 declared\n";
    assert!(check_conformance(good, Some(&declared)).is_empty());
    // A dropped group: two tests never ran, and the suite did not notice.
    let dropped = "PASS a\n1 passed, 0 failed\n";
    let why = check_conformance(dropped, Some(&declared));
    assert!(
        why.iter().any(|w| w == "b is declared but did not run"),
        "{why:?}"
    );
    assert!(why
        .iter()
        .any(|w| w.contains("1 test(s) passed, but 3 are declared")));
    // A failure, a duplicate and an undeclared test.
    let bad = "PASS a\nFAIL b: boom\nPASS c\nPASS c\nPASS d\n4 passed, 1 failed\n";
    let why = check_conformance(bad, Some(&declared));
    assert!(why.contains(&"b failed".to_string()), "{why:?}");
    assert!(why.contains(&"c reported 2 times".to_string()), "{why:?}");
    assert!(why.contains(&"passed d, which the sources do not declare".to_string()));
    assert!(
        check_conformance("PASS a\nPASS b\nPASS c\n", Some(&declared))
            .iter()
            .any(|w| w.contains("no closing line"))
    );
}

#[test]
fn a_prebuilt_suite_must_say_how_many_it_declares() {
    assert!(check_conformance("PASS a\nPASS b\n2 passed, 0 failed, 2 declared\n", None).is_empty());
    let why = check_conformance("PASS a\n1 passed, 0 failed, 2 declared\n", None);
    assert!(
        why.iter()
            .any(|w| w.contains("1 test(s) passed, but 2 are declared")),
        "{why:?}"
    );
    let why = check_conformance("PASS a\nPASS b\n2 passed, 0 failed\n", None);
    assert!(
        why.iter().any(|w| w.contains("does not say how many")),
        "{why:?}"
    );
    let why = check_conformance("PASS a\nPASS a\n2 passed, 0 failed, 2 declared\n", None);
    assert!(why.iter().any(|w| w.contains("more than once")), "{why:?}");
}

#[test]
fn the_real_suite_declares_its_groups() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/src");
    let names = declared::declared_in_dir(&dir).unwrap();
    assert!(names.len() > 50, "only {} tests found", names.len());
    for name in [
        "ipc_call_reply_0_mrs",
        "cnode_delete",
        "stress_bad_input_100k_random_syscalls",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not declared");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a test name is declared twice");
}
