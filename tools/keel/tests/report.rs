//! The conformance closing-line parser and the BENCH-line parser, table and JSON.

use keel::report::*;

#[test]
fn closing_line() {
    assert_eq!(
        parse_closing_line("42 passed, 0 failed"),
        Some(Closing {
            passed: 42,
            failed: 0
        })
    );
    assert_eq!(
        parse_closing_line("40 passed, 3 failed, 1 skipped\r"),
        Some(Closing {
            passed: 40,
            failed: 3
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
            failed: 0
        })
    );
    assert_eq!(find_closing_line("no summary here\n"), None);
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
    // seL4's round trip is known (502: ratio 2.0), its null syscall is not, and sizes are
    // not compared.
    assert_eq!(judged[0].ratio, Some(2.0));
    assert_eq!(judged[1].sel4, Some(Sel4Figure::Unknown));
    assert_eq!(judged[1].ratio, None);
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
    assert!(lines[2].contains("unknown"));
    assert!(lines[3].contains("<= 262144 bytes") && lines[3].ends_with("yes"));
    assert!(lines[4].starts_with("seL4: real seL4 16.0.0"));

    let json = to_json(&judged);
    assert_eq!(
        json,
        serde_json::json!({"results": [
            {"name": "ipc_call_reply_rtt", "value": 1004, "unit": "insns",
             "target": "<= 450 insns", "ok": false, "sel4": 502, "ratio": 2.0},
            {"name": "null_syscall", "value": 90, "unit": "insns", "target": null, "ok": null,
             "sel4": "unknown", "ratio": null},
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
