//! Composing a system image: component programs, the system blob, the loader, the size table.
//!
//! `keel build` (see `main.rs`) lowers `system.cdl` with the `cdl` crate, then uses these
//! pieces: each component's program is built with its generated constants
//! ([`build_component`]), reduced to its loadable segments ([`slim_elf`]), and copied to
//! `target/keel/components/<name>.elf`; the spec and the programs are encoded as a
//! `keel_spec::SystemBlob` ([`encode_blob`]) into `target/keel/system.blob`; the loader is
//! built with `KEEL_SYSTEM_BLOB` naming that file ([`build_loader`]); the kernel and the loader
//! are packed into `target/keel/system.elf`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use keel_spec::{SystemBlob, SystemSpec};

use crate::build::{self, Profile, Workspace};
use crate::elf::{self, Elf, OutSegment, EM_AARCH64, ET_EXEC, PT_LOAD};

/// The protocols every program of the workspace speaks (their `[package.metadata.keel]`), for
/// checking a system's channels (`cdl::load_with`). Outside a workspace (no `cargo metadata`)
/// the table is empty and nothing is checked against programs.
pub fn interfaces() -> cdl::Interfaces {
    let out = build::cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            cdl::interfaces_from_metadata(&String::from_utf8_lossy(&o.stdout)).unwrap_or_else(|e| {
                eprintln!("keel: {e}; channels are not checked against the programs");
                cdl::Interfaces::new()
            })
        }
        _ => cdl::Interfaces::new(),
    }
}

/// File alignment of segments in a slim ELF.
pub const SLIM_ALIGN: u64 = 16;

/// The loader's package (and binary) name.
pub const LOADER_PACKAGE: &str = "loader";

/// `<target>/keel/gen/<component>`: the `KEEL_GEN_DIR` component `name` is built with.
pub fn gen_dir(ws: &Workspace, name: &str) -> PathBuf {
    ws.keel_dir().join("gen").join(name)
}

/// `<target>/keel/gen/<component>/<package>.rs`: component `name`'s generated constants, where
/// `keel_component::include_system!()` in its program `package` finds them.
pub fn gen_file(ws: &Workspace, name: &str, package: &str) -> PathBuf {
    gen_dir(ws, name).join(format!("{package}.rs"))
}

/// `<target>/keel/system.blob`.
pub fn blob_path(ws: &Workspace) -> PathBuf {
    ws.keel_dir().join("system.blob")
}

/// `<target>/keel/system.elf`.
pub fn image_path(ws: &Workspace) -> PathBuf {
    ws.keel_dir().join("system.elf")
}

/// Writes `bytes` to `path` unless it already holds exactly them (so that cargo, which
/// watches the file's time stamp, does not rebuild for nothing). Creates the directory.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// An aarch64 executable reduced to what the loader reads: the ELF header and its PT_LOAD
/// segments (no section headers, symbols or debug information). Segments are packed at
/// 16-byte alignment in the file (`p_align = 16`) rather than page-aligned: the loader copies
/// bytes from any offset, and the padding would only make the image bigger.
pub fn slim_elf(bytes: &[u8]) -> Result<Vec<u8>> {
    let e = Elf::parse(bytes)?;
    if e.e_machine != EM_AARCH64 || e.e_type != ET_EXEC {
        bail!("not an aarch64 static executable");
    }
    let segments: Vec<OutSegment> = e
        .loads()
        .map(|p| OutSegment {
            p_type: PT_LOAD,
            p_flags: p.p_flags,
            p_vaddr: p.p_vaddr,
            p_paddr: p.p_paddr,
            p_memsz: p.p_memsz,
            p_align: SLIM_ALIGN,
            data: e.segment_data(p).to_vec(),
        })
        .collect();
    if segments.is_empty() {
        bail!("has no PT_LOAD segment");
    }
    Ok(elf::write_elf(ET_EXEC, EM_AARCH64, e.e_entry, &segments))
}

/// The postcard encoding of the spec and the component programs (`images[i]` is image `i`);
/// `debug_console`: the kernel it is packed with has the debug system calls.
pub fn encode_blob(
    spec: &SystemSpec,
    images: &[Vec<u8>],
    boots: &[crate::vmimage::GuestBoot],
    debug_console: bool,
) -> Result<Vec<u8>> {
    let vm_boots = boots
        .iter()
        .map(|b| keel_spec::VmBoot {
            pieces: b.pieces.iter().map(|(o, p)| (*o, p.as_slice())).collect(),
            pc: b.entry.pc,
            x0: b.entry.x[0],
            spsr: b.entry.spsr,
        })
        .collect();
    let blob = SystemBlob {
        spec: spec.clone(),
        images: images.iter().map(|i| i.as_slice()).collect(),
        debug_console,
        vm_boots,
    };
    blob.encode().context("cannot encode the system blob")
}

/// Builds component `name`'s program `package` for aarch64 with its generated constants
/// (`KEEL_GEN_DIR` = [`gen_dir`]), and copies the ELF to
/// `target/keel/components/<name>.elf` (several components may share one package, and
/// cargo overwrites its output on each build). Returns the copy's path.
pub fn build_component(
    ws: &Workspace,
    name: &str,
    package: &str,
    profile: Profile,
) -> Result<PathBuf> {
    let envs = [("KEEL_GEN_DIR", gen_dir(ws, name).display().to_string())];
    let elf = build::build_elf_with_env(ws, package, profile, &envs)
        .with_context(|| format!("component `{name}`: building its program `{package}`"))?;
    let dest = ws.keel_dir().join("components").join(format!("{name}.elf"));
    let bytes = build::read(&elf)?;
    write_if_changed(&dest, &bytes)?;
    Ok(dest)
}

/// Builds the loader with the blob at `blob` embedded.
pub fn build_loader(
    ws: &Workspace,
    blob: &Path,
    profile: Profile,
    kernel: build::KernelKind,
) -> Result<PathBuf> {
    // Without the kernel's debug system calls the loader's prints must go nowhere (sel4-rt).
    let print = match kernel {
        build::KernelKind::Plain => "off",
        build::KernelKind::Debug => "on",
    };
    let envs = [
        ("KEEL_SYSTEM_BLOB", blob.display().to_string()),
        ("SEL4_RT_PRINT", print.to_string()),
    ];
    build::build_elf_with_env(ws, LOADER_PACKAGE, profile, &envs)
}

/// What the loader prints once every component has been started.
pub const SYSTEM_UP: &str = "loader: system up";
/// The loader's cycle-counter line: `loader: PMCCNTR_EL0 <n> at system up`.
pub const BOOT_COUNTER: &str = "loader: PMCCNTR_EL0 ";

/// The loader's cycle counter at `system up` (instructions since the kernel's early boot under
/// `-icount shift=0`), from a run's output.
pub fn loader_boot_insns(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix(BOOT_COUNTER)?
            .strip_suffix(" at system up")?
            .parse()
            .ok()
    })
}

/// One row of the size table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRow {
    pub part: String,
    /// Bytes it adds to the image file.
    pub image: u64,
    /// Bytes of memory its segments take when loaded (0 when not applicable).
    pub memory: u64,
    pub what: String,
}

/// Bytes of file data and of memory of an ELF's PT_LOAD segments.
pub fn load_sizes(bytes: &[u8]) -> Result<(u64, u64)> {
    let e = Elf::parse(bytes)?;
    Ok(e.loads()
        .fold((0, 0), |(f, m), p| (f + p.p_filesz, m + p.p_memsz)))
}

/// Renders the size table, with the image's total and the 1 MiB target.
pub fn render_sizes(rows: &[SizeRow], total: u64) -> String {
    let width = rows.iter().map(|r| r.part.len()).max().unwrap_or(4).max(11);
    let mut s = format!(
        "{:<width$}  {:>9}  {:>9}  what\n",
        "part", "image", "memory"
    );
    for r in rows {
        let memory = if r.memory == 0 {
            "-".to_string()
        } else {
            r.memory.to_string()
        };
        s += &format!(
            "{:<width$}  {:>9}  {:>9}  {}\n",
            r.part, r.image, memory, r.what
        );
    }
    let verdict = if total <= 1 << 20 {
        "within the 1 MiB target"
    } else {
        "ABOVE the 1 MiB target"
    };
    s += &format!(
        "{:<width$}  {:>9}  {:>9}  the image file ({:.1} KiB, {verdict})\n",
        "total",
        total,
        "",
        total as f64 / 1024.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{write_elf, PF_R, PF_W, PF_X};
    use keel_spec::{ComponentSpec, RestartPolicy};

    fn seg(vaddr: u64, data: &[u8], memsz: u64, flags: u32) -> OutSegment {
        OutSegment {
            p_type: PT_LOAD,
            p_flags: flags,
            p_vaddr: vaddr,
            p_paddr: vaddr,
            p_memsz: memsz,
            p_align: 0x1000,
            data: data.to_vec(),
        }
    }

    #[test]
    fn slim_keeps_loads_only() {
        let mut fat = write_elf(
            ET_EXEC,
            EM_AARCH64,
            0x40_0000,
            &[
                seg(0x40_0000, b"code", 4, PF_R | PF_X),
                seg(0x40_1000, b"data", 0x100, PF_R | PF_W),
            ],
        );
        fat.extend_from_slice(&[0xee; 5000]); // stands in for symbols and sections
        let slim = slim_elf(&fat).unwrap();
        assert!(slim.len() < fat.len());
        let e = Elf::parse(&slim).unwrap();
        assert_eq!(e.e_entry, 0x40_0000);
        let loads: Vec<_> = e.loads().collect();
        assert_eq!(loads.len(), 2);
        assert_eq!(e.segment_data(loads[1]), b"data");
        assert_eq!(loads[1].p_memsz, 0x100);
        assert!(slim_elf(b"junk").is_err());
    }

    #[test]
    fn blob_decodes() {
        let spec = SystemSpec {
            components: vec![ComponentSpec {
                name: "a".into(),
                image: 0,
                priority: 1,
                budget_us: 10,
                period_us: 10,
                passive: false,
                stack_size: 4096,
                maps: vec![],
                irqs: vec![],
                restart: RestartPolicy::Hold,
            }],
            regions: vec![],
            channels: vec![],
            supervisor: None,
            console: None,
            vms: vec![],
            guest_files: vec![],
        };
        let bytes = encode_blob(&spec, &[vec![1, 2, 3]], &[], false).unwrap();
        let back = SystemBlob::decode(&bytes).unwrap();
        assert!(!back.debug_console);
        assert_eq!(back.spec, spec);
        assert_eq!(back.images, vec![&[1u8, 2, 3][..]]);
    }

    #[test]
    fn boot_counter_line() {
        let out = "loader: hello up\nloader: system up (1 components)\nloader: PMCCNTR_EL0 123456 at system up\r\n";
        assert_eq!(loader_boot_insns(out), Some(123456));
        assert_eq!(
            loader_boot_insns("loader: PMCCNTR_EL0 x at system up"),
            None
        );
        assert_eq!(loader_boot_insns(""), None);
    }

    #[test]
    fn size_table() {
        let rows = vec![
            SizeRow {
                part: "kernel".into(),
                image: 100,
                memory: 200,
                what: "loaded".into(),
            },
            SizeRow {
                part: "hello".into(),
                image: 20,
                memory: 0,
                what: "ELF".into(),
            },
        ];
        let t = render_sizes(&rows, 2 << 20);
        assert!(t.contains("kernel"));
        assert!(t.contains("ABOVE the 1 MiB target"), "{t}");
        assert!(render_sizes(&rows, 1000).contains("within"));
    }

    #[test]
    fn write_if_changed_keeps_mtime() {
        let dir = std::env::temp_dir().join(format!("keel-wic-{}", std::process::id()));
        let p = dir.join("sub/f.bin");
        write_if_changed(&p, b"one").unwrap();
        let t1 = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_if_changed(&p, b"one").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), t1);
        write_if_changed(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
