//! The `keel` command line; see the library documentation (`keel::`) for what it may and may
//! not do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use keel::build::{self, KernelKind, Profile, Workspace};
use keel::qemu::{self, Exit, QemuOptions, RunConfig};
use keel::system::{self, SizeRow};
use keel::{board, image, loadertest, report, setup};
use keel_spec::SystemSpec;

/// The system file `keel build` and `keel run` use when none is named.
const DEFAULT_SYSTEM: &str = "system.cdl";

#[derive(Parser, Debug)]
#[command(
    name = "keel",
    version,
    about = "Build, pack and boot Keel images under QEMU",
    after_help = "Exit codes: `run` passes on QEMU's exit code (semihosting exit code, 0 after \
                  PSCI SYSTEM_OFF), 124 on timeout, 1 for a missing --expect marker; other \
                  failures exit 1."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Prebuilt ELF files to use instead of building them.
#[derive(clap::Args, Debug, Default, Clone)]
struct Prebuilt {
    /// Use this kernel ELF instead of building the kernel.
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Use this root-task ELF instead of building the root-task package.
    #[arg(long, value_name = "FILE")]
    root_task: Option<PathBuf>,
    /// Give a system image the kernel with seL4's debug system calls (test images, `-p`
    /// root tasks and `keel image` always have them; the default system does not).
    #[arg(long)]
    debug_kernel: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Install QEMU if it is missing and make sure the aarch64-unknown-none target is there
    /// (idempotent).
    Setup,
    /// Build the kernel for aarch64 and print the path of its ELF.
    BuildKernel {
        /// Build the dev profile instead of release.
        #[arg(long)]
        debug: bool,
        /// With seL4's debug system calls (DebugPutChar, DebugHalt, ...).
        #[arg(long)]
        debug_kernel: bool,
    },
    /// Build a root-task package for aarch64 and print the path of its ELF.
    BuildRootTask {
        /// The package, e.g. `conformance` or `bench`.
        #[arg(short, long, value_name = "PACKAGE")]
        package: String,
        /// Build the dev profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Pack the kernel and a statically linked aarch64 root-task ELF into one bootable ELF.
    Image {
        /// The root-task ELF.
        #[arg(long, value_name = "FILE")]
        root_task: PathBuf,
        /// The kernel ELF [default: build the release kernel].
        #[arg(long, value_name = "FILE")]
        kernel: Option<PathBuf>,
        /// Where to write the image.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
    /// Check a system.cdl and report every error (codes, positions, carets); exit 1 on errors.
    Check {
        /// The system file.
        file: PathBuf,
    },
    /// Build a system image from system.cdl (target/keel/system.elf) and print its size table;
    /// with -p, build a plain root-task image instead (target/keel/PACKAGE.elf).
    Build {
        /// The system file [default: ./system.cdl, else the workspace's].
        #[arg(long, value_name = "FILE", conflicts_with = "package")]
        system: Option<PathBuf>,
        /// Build this root-task package and pack it alone with the kernel (no system.cdl),
        /// e.g. `conformance` or `bench`.
        #[arg(short, long, value_name = "PACKAGE")]
        package: Option<String>,
        /// Write the system as capDL instead of building an image.
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "package")]
        emit: Option<Emit>,
        /// With --emit: write to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE", requires = "emit")]
        output: Option<PathBuf>,
        /// Build the dev profile instead of release.
        #[arg(long)]
        debug: bool,
        #[command(flatten)]
        prebuilt: Prebuilt,
    },
    /// Boot IMAGE in QEMU (or build and boot the default system when IMAGE is not given).
    Run {
        /// The image to boot.
        image: Option<PathBuf>,
        /// Without IMAGE: build and boot this root-task package instead of a system.
        #[arg(short, long, value_name = "PACKAGE", conflicts_with_all = ["image", "system"])]
        package: Option<String>,
        /// Without IMAGE: the system file to build and boot [default: ./system.cdl, else the
        /// workspace's].
        #[arg(long, value_name = "FILE", conflicts_with = "image")]
        system: Option<PathBuf>,
        /// Stop QEMU and exit 0 as soon as every --expect marker has been printed.
        #[arg(long, requires = "expect")]
        exit_on_expect: bool,
        /// Kill QEMU after this many seconds (exit 124) [default: none when booting the
        /// default system without --expect, so it runs until you stop it with Ctrl-C;
        /// otherwise 60].
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Run with `-icount shift=0` (deterministic instruction counting).
        #[arg(long)]
        icount: bool,
        /// Fail (exit 1) unless the output contains MARKER; repeatable.
        #[arg(long = "expect", value_name = "MARKER")]
        expect: Vec<String>,
        /// Append ARG to the QEMU command line; repeatable.
        #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
        qemu_arg: Vec<String>,
        /// RAM for QEMU's `-m` (e.g. 512M, 2G) [default: 1G].
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
        /// Without IMAGE: prebuilt ELF files to pack instead of building.
        #[command(flatten)]
        prebuilt: Prebuilt,
    },
    /// Build and boot the conformance suite; exit 0 only if every test its sources declare
    /// passed, exactly once, and it ends with `N passed, 0 failed`.
    Conformance {
        /// Kill QEMU after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        timeout: u64,
        /// RAM for QEMU's `-m` (e.g. 512M, 2G) [default: 1G].
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
        /// Build the kernel and the suite for 44-bit physical addresses and boot them on the
        /// CPU seL4 configures that way (cortex-a72).
        #[arg(long, conflicts_with = "kernel")]
        pa44: bool,
        #[command(flatten)]
        prebuilt: Prebuilt,
    },
    /// Build and boot the benchmark root task under -icount; print a table and write
    /// target/bench.json.
    Bench {
        /// Kill QEMU after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        prebuilt: Prebuilt,
    },
    /// The sequence fuzzer on a kernel with the invariant checker; exit 0 only if it ends
    /// with `fuzz: N operations, seed S, 0 violations` (see tools/keel/src/fuzz.rs).
    Fuzz(keel::fuzz::FuzzArgs),
    /// The loader's system test: boot a hand-built four-component system (tests/components/
    /// loader-testprog) and check every line it must print; then one the loader must refuse.
    LoaderTest {
        /// Kill QEMU after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        prebuilt: Prebuilt,
    },
    /// The Linux guest: fetch it, boot it directly, check it, measure it.
    Guest {
        #[command(subcommand)]
        cmd: keel::guest::GuestCmd,
    },
    /// Print the layout of an image made by `keel image`, checking it against the format.
    Inspect {
        /// The image.
        image: PathBuf,
    },
}

/// Output formats of `keel build --emit`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Emit {
    /// capDL text (objects and capabilities).
    Capdl,
}

fn profile(debug: bool) -> Profile {
    if debug {
        Profile::Debug
    } else {
        Profile::Release
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("keel: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Setup => {
            setup::setup()?;
            Ok(0)
        }
        Cmd::BuildKernel {
            debug,
            debug_kernel,
        } => {
            let ws = build::workspace()?;
            let elf = build::build_kernel(&ws, profile(debug), KernelKind::debug(debug_kernel))?;
            println!("{}", elf.display());
            Ok(0)
        }
        Cmd::BuildRootTask { package, debug } => {
            let ws = build::workspace()?;
            let elf = build::build_elf(&ws, &package, profile(debug))?;
            println!("{}", elf.display());
            Ok(0)
        }
        Cmd::Image {
            root_task,
            kernel,
            output,
        } => {
            let kernel = match kernel {
                Some(k) => k,
                None => {
                    let ws = build::workspace()?;
                    // Outside root tasks (sel4test, ...) print through DebugPutChar.
                    build::build_kernel(&ws, Profile::Release, KernelKind::Debug)?
                }
            };
            make_image(&kernel, &root_task, &output)?;
            println!("{}", output.display());
            Ok(0)
        }
        Cmd::Check { file } => check(&file),
        Cmd::Build {
            system,
            package,
            emit,
            output,
            debug,
            prebuilt,
        } => {
            let ws = build::workspace()?;
            if let Some(package) = package {
                let (img, _) = build_system(&ws, &package, profile(debug), &prebuilt)?;
                println!("{}", img.display());
                return Ok(0);
            }
            let file = system_file(&ws, system);
            match emit {
                Some(Emit::Capdl) => {
                    emit_capdl(&ws, &file, profile(debug), output.as_deref())?;
                }
                None => {
                    let composed =
                        build_cdl(&ws, &file, profile(debug), &prebuilt, KernelKind::Plain)?;
                    print!("{}", system::render_sizes(&composed.rows, composed.total));
                    println!("{}", composed.image.display());
                }
            }
            Ok(0)
        }
        Cmd::Run {
            image,
            package,
            system,
            exit_on_expect,
            timeout,
            icount,
            expect,
            qemu_arg,
            memory,
            prebuilt,
        } => {
            // A system runs until stopped; a test run (markers, an image, a root task) gets a
            // deadline so that it cannot hang.
            let forever = image.is_none() && package.is_none() && expect.is_empty();
            let image = match image {
                Some(i) => {
                    if prebuilt.kernel.is_some() || prebuilt.root_task.is_some() {
                        bail!("--kernel and --root-task are for building an image; not with IMAGE");
                    }
                    i
                }
                None => {
                    let ws = build::workspace()?;
                    match package {
                        Some(pkg) => build_system(&ws, &pkg, Profile::Release, &prebuilt)?.0,
                        None => {
                            let file = system_file(&ws, system);
                            let composed = build_cdl(
                                &ws,
                                &file,
                                Profile::Release,
                                &prebuilt,
                                KernelKind::Plain,
                            )?;
                            eprint!("{}", system::render_sizes(&composed.rows, composed.total));
                            composed.image
                        }
                    }
                }
            };
            let opts = QemuOptions {
                icount,
                extra_args: qemu_arg,
                memory,
                cpu: None,
            };
            let stop = if exit_on_expect {
                Stop::OnMarkers
            } else {
                Stop::AtExit
            };
            let timeout = match timeout {
                Some(t) => t,
                None if forever => {
                    eprintln!("keel: running until QEMU is stopped (Ctrl-C quits)");
                    NO_TIMEOUT
                }
                None => 60,
            };
            run_with(&image, &opts, timeout, &expect, true, stop).map(|(code, _)| code)
        }
        Cmd::Conformance {
            timeout,
            memory,
            pa44,
            prebuilt,
        } => conformance(timeout, memory, pa44, &prebuilt),
        Cmd::Bench { timeout, prebuilt } => bench(timeout, &prebuilt),
        Cmd::Inspect { image } => {
            inspect(&image)?;
            Ok(0)
        }
        Cmd::LoaderTest { timeout, prebuilt } => loader_test(timeout, &prebuilt),
        Cmd::Fuzz(a) => keel::fuzz::run(&a),
        Cmd::Guest { cmd } => keel::guest::main(cmd),
    }
}

/// The system file: `given`, else `./system.cdl` if it exists, else the workspace's.
fn system_file(ws: &Workspace, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let here = PathBuf::from(DEFAULT_SYSTEM);
        if here.is_file() {
            here
        } else {
            ws.root.join(DEFAULT_SYSTEM)
        }
    })
}

/// Reads and checks a system file with the `cdl` crate. On errors prints every diagnostic
/// (graphical, with colour on a terminal) and returns `Err` with a one-line summary. A panic in
/// the checker (a bug) is reported as an error too, never as a crash of `keel`.
fn load_system(path: &Path) -> Result<cdl::System> {
    use std::io::IsTerminal;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("keel: internal error in the cdl checker: {info}")
    }));
    let interfaces = system::interfaces();
    let loaded = std::panic::catch_unwind(|| cdl::load_with(path, &interfaces));
    std::panic::set_hook(hook);
    match loaded {
        Ok(Ok(system)) => Ok(system),
        Ok(Err(report)) => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", report.render(color));
            bail!("{report}")
        }
        Err(_) => bail!(
            "checking {} failed with an internal error (see above)",
            path.display()
        ),
    }
}

fn check(file: &Path) -> Result<i32> {
    match load_system(file) {
        Ok(sys) => {
            let vms = match sys.vms().len() {
                0 => String::new(),
                n => format!(", {n} VM{}", if n == 1 { "" } else { "s" }),
            };
            println!(
                "{}: ok: {} components, {} channels, {} regions{vms}",
                file.display(),
                sys.components().len(),
                sys.channels().len(),
                sys.regions().len()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("keel: {e:#}");
            Ok(1)
        }
    }
}

/// Checks and lowers `file`, writes every component's generated constants and builds its
/// program. Returns the spec and the programs' ELF paths (image i = component i). On a
/// malformed file nothing is built and a previous `system.elf` is removed, so that no image
/// ever stands for a file that does not check.
fn prepare_cdl(ws: &Workspace, file: &Path, profile: Profile) -> Result<Prepared> {
    let sys = match load_system(file) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(system::image_path(ws));
            return Err(e.context("no image was built"));
        }
    };
    let spec = sys.lower();
    // Each VM's RAM contents and boot vCPU's entry, placed here so the loader only copies.
    let mut boots = Vec::with_capacity(sys.vms().len());
    for vm in sys.vms() {
        let boot = guest_boot(vm).with_context(|| {
            let _ = std::fs::remove_file(system::image_path(ws));
            format!("{}: VM `{}`; no image was built", file.display(), vm.name)
        })?;
        boots.push(boot);
    }
    let mut images = Vec::with_capacity(spec.components.len());
    for (i, c) in spec.components.iter().enumerate() {
        if c.image as usize != i {
            bail!(
                "component `{}` has image {}, expected {i} (a bug in the lowering)",
                c.name,
                c.image
            );
        }
        system::write_if_changed(
            &system::gen_file(ws, &c.name, sys.program(i)),
            sys.generate(i).as_bytes(),
        )?;
    }
    for (i, c) in spec.components.iter().enumerate() {
        let package = sys.program(i);
        if package.is_empty() {
            bail!("component `{}` has no program", c.name);
        }
        let elf = system::build_component(ws, &c.name, package, profile)?;
        images.push((c.name.clone(), elf));
    }
    Ok(Prepared {
        spec,
        images,
        boots,
    })
}

/// A system ready to compose: its spec, its programs (by image index: a name for the size
/// table and the ELF's path) and each VM's boot pieces.
struct Prepared {
    spec: SystemSpec,
    images: Vec<(String, PathBuf)>,
    boots: Vec<keel::vmimage::GuestBoot>,
}

/// A VM's boot pieces from its kernel and initramfs files (`keel::vmimage`).
fn guest_boot(vm: &cdl::Vm) -> Result<keel::vmimage::GuestBoot> {
    let kernel = build::read(&vm.kernel.path)?;
    let initramfs = match &vm.initramfs {
        Some(f) => build::read(&f.path)?,
        None => Vec::new(),
    };
    keel::vmimage::guest_boot(
        vm.ram_base,
        vm.ram_size,
        vm.vcpus.len() as u32,
        &kernel,
        &initramfs,
        &vm.cmdline,
    )
}

/// `keel build`: the system image `target/keel/system.elf`.
fn build_cdl(
    ws: &Workspace,
    file: &Path,
    profile: Profile,
    prebuilt: &Prebuilt,
    kernel: KernelKind,
) -> Result<Composed> {
    let prepared = prepare_cdl(ws, file, profile)?;
    compose(ws, "system", &prepared, profile, prebuilt, kernel)
}

/// `keel build --emit capdl`.
fn emit_capdl(ws: &Workspace, file: &Path, profile: Profile, output: Option<&Path>) -> Result<()> {
    let Prepared { spec, images, .. } = prepare_cdl(ws, file, profile)?;
    let bytes: Vec<Vec<u8>> = images
        .iter()
        .map(|(_, p)| build::read(p))
        .collect::<Result<_>>()?;
    let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    let text = keel::capdl::emit(&spec, &refs)?;
    match output {
        Some(path) => {
            system::write_if_changed(path, text.as_bytes())?;
            eprintln!("keel: wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// A system image made by [`compose`].
struct Composed {
    image: PathBuf,
    rows: Vec<SizeRow>,
    total: u64,
}

/// Packs the kernel and a loader carrying `system` (spec, programs, VM boot pieces) into
/// `target/keel/<name>.elf`; the blob goes to `target/keel/<name>.blob`.
fn compose(
    ws: &Workspace,
    name: &str,
    system: &Prepared,
    profile: Profile,
    prebuilt: &Prebuilt,
    kind: KernelKind,
) -> Result<Composed> {
    let (spec, images, boots) = (&system.spec, &system.images, &system.boots);
    if prebuilt.root_task.is_some() {
        bail!("--root-task does not apply to a system image: the loader is its root task");
    }
    let kind = if prebuilt.debug_kernel {
        KernelKind::Debug
    } else {
        kind
    };
    let kernel = match &prebuilt.kernel {
        Some(k) => k.clone(),
        None => build::build_kernel(ws, profile, kind)?,
    };
    let mut slim = Vec::with_capacity(images.len());
    let mut rows = Vec::new();
    let kbytes = build::read(&kernel)?;
    let (kfile, kmem) = system::load_sizes(&kbytes)?;
    // The loader prints only through the kernel's debug console, so only when it has one.
    let debug_console = KernelKind::of_elf(&kbytes) == KernelKind::Debug;
    rows.push(SizeRow {
        part: "kernel".into(),
        image: kfile,
        memory: kmem,
        what: format!(
            "its PT_LOAD segments ({})",
            KernelKind::of_elf(&kbytes).describe()
        ),
    });
    for (n, path) in images {
        let fat = build::read(path)?;
        let s = system::slim_elf(&fat)
            .with_context(|| format!("program of `{n}` ({})", path.display()))?;
        let (_, mem) = system::load_sizes(&s)?;
        rows.push(SizeRow {
            part: n.clone(),
            image: s.len() as u64,
            memory: mem,
            what: "program (ELF headers and PT_LOADs, in the loader's blob)".into(),
        });
        slim.push(s);
    }
    let blob = system::encode_blob(spec, &slim, boots, debug_console)?;
    let programs: u64 = slim.iter().map(|s| s.len() as u64).sum();
    let blob_path = ws.keel_dir().join(format!("{name}.blob"));
    system::write_if_changed(&blob_path, &blob)?;
    let loader = system::build_loader(ws, &blob_path, profile, kind)?;
    let lbytes = build::read(&loader)?;
    let (lfile, lmem) = system::load_sizes(&lbytes)?;
    rows.insert(
        1,
        SizeRow {
            part: "loader".into(),
            image: lfile.saturating_sub(blob.len() as u64),
            memory: lmem.saturating_sub(blob.len() as u64),
            what: "root task, without its blob".into(),
        },
    );
    rows.insert(
        2,
        SizeRow {
            part: "spec".into(),
            image: (blob.len() as u64).saturating_sub(programs),
            memory: 0,
            what: "the system spec in the blob".into(),
        },
    );
    let out = ws.keel_dir().join(format!("{name}.elf"));
    let packed = make_image(&kernel, &loader, &out)?;
    Ok(Composed {
        image: out,
        rows,
        total: packed.bytes.len() as u64,
    })
}

fn loader_test(timeout: u64, prebuilt: &Prebuilt) -> Result<i32> {
    let ws = build::workspace()?;
    let prog = build::build_elf(&ws, loadertest::TESTPROG, Profile::Release)?;
    let spec = loadertest::spec();
    let composed = compose(
        &ws,
        "loader-test",
        &Prepared {
            spec: spec.clone(),
            images: vec![("testprog".into(), prog.clone())],
            boots: Vec::new(),
        },
        Profile::Release,
        prebuilt,
        KernelKind::Debug,
    )?;
    print!("{}", system::render_sizes(&composed.rows, composed.total));
    let (code, outcome) = run(
        &composed.image,
        &QemuOptions::default(),
        timeout,
        &[],
        false,
    )?;
    // capDL is the oracle for every component's capabilities: the same text `keel build
    // --emit capdl` writes, for this spec and program.
    let capdl = keel::capdl::emit(&spec, &[&build::read(&prog)?])?;
    let capdl_file = ws.keel_dir().join("loader-test.capdl");
    system::write_if_changed(&capdl_file, capdl.as_bytes())?;
    eprintln!("keel: capDL of the loader test: {}", capdl_file.display());
    let mut problems = loadertest::check_output(&outcome.stdout, &capdl);
    if code != 0 {
        problems.push(format!("the run ended with code {code}"));
    }
    // A system the loader must refuse, with a clear error and exit code 1.
    let (bad, error) = loadertest::bad_spec();
    let images = [(
        "testprog".to_string(),
        build::build_elf(&ws, loadertest::TESTPROG, Profile::Release)?,
    )];
    let composed = compose(
        &ws,
        "loader-test-bad",
        &Prepared {
            spec: bad,
            images: images.to_vec(),
            boots: Vec::new(),
        },
        Profile::Release,
        prebuilt,
        KernelKind::Debug,
    )?;
    let (code, outcome) = run(
        &composed.image,
        &QemuOptions::default(),
        timeout,
        &[],
        false,
    )?;
    if !outcome.stdout.lines().any(|l| l.starts_with(error)) {
        problems.push(format!("the bad system did not fail with {error:?}"));
    }
    if code != 1 {
        problems.push(format!(
            "the bad system's run ended with code {code}, not 1"
        ));
    }
    for p in &problems {
        eprintln!("loader-test: FAILED: {p}");
    }
    if problems.is_empty() {
        println!("loader-test: passed");
        Ok(0)
    } else {
        Ok(1)
    }
}

/// Packs `kernel` + `root_task` into `out`, checking that it fits the board.
fn make_image(kernel: &Path, root_task: &Path, out: &Path) -> Result<image::Packed> {
    let k = build::read(kernel)?;
    let rt = build::read(root_task)?;
    let packed = image::pack(&k, &rt).with_context(|| {
        format!(
            "cannot pack kernel {} with root task {}",
            kernel.display(),
            root_task.display()
        )
    })?;
    let ram_end = board::RAM_BASE + board::RAM_SIZE;
    if packed.kernel.load_start < board::RAM_BASE
        || packed.block_address + packed.block_size > ram_end
    {
        bail!(
            "the image spans {:#x}..{:#x}, outside the board's RAM {:#x}..{ram_end:#x}",
            packed.kernel.load_start,
            packed.block_address + packed.block_size,
            board::RAM_BASE
        );
    }
    if packed.kernel.load_start < board::DTB_BASE + board::DTB_SIZE {
        eprintln!(
            "keel: warning: the kernel loads at {:#x}, inside the 1 MiB above {:#x}: QEMU will \
             silently omit the device tree (link the kernel at {:#x})",
            packed.kernel.load_start,
            board::DTB_BASE,
            board::KERNEL_BASE
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(out, &packed.bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "keel: image {}: kernel {:#x}..{:#x} ({} bytes loaded, entry {:#x}), boot block at {:#x} \
         ({} bytes, root task {} bytes)",
        out.display(),
        packed.kernel.load_start,
        packed.kernel.load_end,
        packed.kernel.loaded_size,
        packed.kernel.entry,
        packed.block_address,
        packed.block_size,
        rt.len()
    );
    Ok(packed)
}

/// Builds the kernel and `package` (unless `prebuilt` names their ELF files) and packs them into
/// `target/keel/<package>.elf`. Returns the image path and the kernel ELF path.
fn build_system(
    ws: &Workspace,
    package: &str,
    profile: Profile,
    prebuilt: &Prebuilt,
) -> Result<(PathBuf, PathBuf)> {
    // A root task on its own is a test image: it prints through DebugPutChar.
    let kernel = match &prebuilt.kernel {
        Some(k) => k.clone(),
        None => build::build_kernel(ws, profile, KernelKind::Debug)?,
    };
    let root_task = match &prebuilt.root_task {
        Some(r) => r.clone(),
        None => build::build_elf(ws, package, profile)?,
    };
    let out = ws.keel_dir().join(format!("{package}.elf"));
    make_image(&kernel, &root_task, &out)?;
    Ok((out, kernel))
}

/// When `run` stops QEMU.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// When it exits (or at the timeout).
    AtExit,
    /// As soon as every expected marker has been printed (then the run passes).
    OnMarkers,
}

/// Boots `image`; returns keel's exit code for the run and what QEMU printed.
fn run(
    image: &Path,
    opts: &QemuOptions,
    timeout: u64,
    expect: &[String],
    interactive: bool,
) -> Result<(i32, qemu::Outcome)> {
    run_with(image, opts, timeout, expect, interactive, Stop::AtExit)
}

/// A timeout long enough to mean "none" (about 30 years).
const NO_TIMEOUT: u64 = 1 << 30;

fn run_with(
    image: &Path,
    opts: &QemuOptions,
    timeout: u64,
    expect: &[String],
    interactive: bool,
    stop: Stop,
) -> Result<(i32, qemu::Outcome)> {
    if !image.is_file() {
        bail!("image {} does not exist", image.display());
    }
    let cmd = qemu::qemu_command(image, opts);
    eprintln!("keel: {}", qemu::display_command(&cmd));
    let cfg = RunConfig {
        timeout: Duration::from_secs(timeout),
        echo: true,
        interactive,
    };
    let done = |out: &str| stop == Stop::OnMarkers && qemu::missing_markers(out, expect).is_empty();
    let outcome = qemu::run_until(cmd, cfg, &done).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "{} not found; run `just setup` (or `keel setup`) to install QEMU",
                qemu::qemu_program().to_string_lossy()
            )
        } else {
            anyhow::Error::new(e).context("cannot start QEMU")
        }
    })?;
    let mut code = outcome.exit.code();
    match outcome.exit {
        Exit::Stopped => eprintln!("keel: every expected marker seen; QEMU stopped"),
        Exit::Timeout => eprintln!("keel: timeout after {timeout} s"),
        Exit::Signal(s) => eprintln!("keel: QEMU was killed by signal {s}"),
        Exit::Code(0) => {}
        Exit::Code(c) => eprintln!("keel: QEMU exited with code {c}"),
    }
    let missing = qemu::missing_markers(&outcome.stdout, expect);
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("keel: expected marker not seen: {m:?}");
        }
        if code == 0 {
            code = 1;
        }
    }
    Ok((code, outcome))
}

fn conformance(
    timeout: u64,
    memory: Option<String>,
    pa44: bool,
    prebuilt: &Prebuilt,
) -> Result<i32> {
    let ws = build::workspace()?;
    // The tests the sources declare; a prebuilt root task's closing line says instead.
    let declared = match prebuilt.root_task {
        Some(_) => None,
        None => Some(
            report::declared::declared_in_dir(&ws.root.join("tests/conformance/src"))
                .context("reading the conformance suite's sources")?,
        ),
    };
    let mut opts = QemuOptions {
        memory,
        ..QemuOptions::default()
    };
    let img = if pa44 {
        let kernel = build::build_kernel_for(&ws, Profile::Release, KernelKind::Debug, true)?;
        let root_task = match &prebuilt.root_task {
            Some(r) => r.clone(),
            None => build::build_elf_with_features(
                &ws,
                "conformance",
                Profile::Release,
                &["sel4-sys/pa44"],
            )?,
        };
        let out = ws.keel_dir().join("conformance-pa44.elf");
        make_image(&kernel, &root_task, &out)?;
        opts.cpu = Some(qemu_virt::PaWidth::Bits44.qemu_cpu().into());
        out
    } else {
        build_system(&ws, "conformance", Profile::Release, prebuilt)?.0
    };
    let (_, outcome) = run(&img, &opts, timeout, &[], false)?;
    let closing = report::find_closing_line(&outcome.stdout);
    let mut why = Vec::new();
    match outcome.exit {
        Exit::Code(0) | Exit::Stopped => {}
        Exit::Timeout => why.push(format!("QEMU did not finish within {timeout} s")),
        Exit::Signal(s) => why.push(format!("QEMU was killed by signal {s}")),
        Exit::Code(c) => why.push(format!(
            "QEMU exited with code {c} (a kernel panic or a failing root task exits non-zero)"
        )),
    }
    // Every declared test must have passed, exactly once: a dropped group fails the run.
    why.extend(report::check_conformance(
        &outcome.stdout,
        declared.as_deref(),
    ));
    for w in &why {
        eprintln!("conformance: FAILED: {w}");
    }
    if let Some(c) = closing {
        let d = declared.as_ref().map(|d| d.len() as u64).or(c.declared);
        println!(
            "conformance: {} passed, {} failed{}",
            c.passed,
            c.failed,
            d.map(|d| format!(", {d} declared")).unwrap_or_default()
        );
    }
    Ok(if why.is_empty() { 0 } else { 1 })
}

fn bench(timeout: u64, prebuilt: &Prebuilt) -> Result<i32> {
    let ws = build::workspace()?;
    let (img, kernel) = build_system(&ws, "bench", Profile::Release, prebuilt)?;
    let opts = QemuOptions {
        icount: true,
        ..QemuOptions::default()
    };
    let (code, outcome) = run(&img, &opts, timeout, &[], false)?;
    let (mut results, problems) = report::parse_bench_output(&outcome.stdout);
    for p in &problems {
        eprintln!("bench: WARN: {p}");
    }
    let saw_bench = !results.is_empty();
    let kernel_elf = build::read(&kernel)?;
    results.push(report::BenchResult {
        name: "kernel_loaded_size".into(),
        value: image::loaded_size(&kernel_elf)? as f64,
        unit: "bytes".into(),
    });
    results.push(report::BenchResult {
        name: "kernel_text_size".into(),
        value: report::kernel_text_size(&kernel_elf)? as f64,
        unit: "bytes".into(),
    });
    // The default system: boot time and image size by part (not with a prebuilt root task,
    // which stands for the benchmark root task only).
    let mut system_failed = false;
    if prebuilt.root_task.is_none() {
        match system_bench(&ws, prebuilt) {
            Ok(r) => results.extend(r),
            Err(e) => {
                eprintln!("bench: FAILED: the default system: {e:#}");
                system_failed = true;
            }
        }
    }
    // The Linux guest booted directly (optional: only when `just guest` fetched it; not
    // with a prebuilt root task either).
    let guest_line = match prebuilt.root_task {
        Some(_) => "linux direct boot: skipped (prebuilt root task)".into(),
        None => keel::guest::bench_results(&mut results).unwrap_or_else(|e| {
            eprintln!("bench: FAILED: the linux direct boot: {e:#}");
            system_failed = true;
            "linux direct boot: FAILED".into()
        }),
    };
    let judged = report::judge(&results);
    println!();
    print!("{}", report::render_table(&judged));
    let json_path = ws.target_dir.join("bench.json");
    let json = serde_json::to_string_pretty(&report::to_json(&judged))?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("bench: wrote {}", json_path.display());
    println!("bench: {guest_line}");
    for j in &judged {
        if let Some(w) = report::missed_target_warning(j) {
            println!("bench: {w}");
        }
    }
    let mut failed = system_failed;
    if code != 0 {
        eprintln!("bench: FAILED: the benchmark run did not exit cleanly (code {code})");
        failed = true;
    }
    if !saw_bench {
        eprintln!(
            "bench: FAILED: the benchmark root task printed no `BENCH <name> <value> <unit>` line"
        );
        failed = true;
    }
    Ok(if failed { 1 } else { 0 })
}

/// Builds the default system and boots it under -icount until the loader reports `system up`:
/// `loader_boot_insns` (instructions from the kernel's PMU set-up, early in its boot, to the
/// loader's `system up`) and `image_size_*` (bytes each part adds to the image file).
fn system_bench(ws: &Workspace, prebuilt: &Prebuilt) -> Result<Vec<report::BenchResult>> {
    let file = system_file(ws, None);
    // The markers below are the loader's, printed through DebugPutChar: a debug kernel.
    let composed = build_cdl(ws, &file, Profile::Release, prebuilt, KernelKind::Debug)?;
    let opts = QemuOptions {
        icount: true,
        ..QemuOptions::default()
    };
    let markers = vec![
        system::SYSTEM_UP.to_string(),
        system::BOOT_COUNTER.to_string(),
    ];
    let (_, outcome) = run_with(&composed.image, &opts, 60, &markers, false, Stop::OnMarkers)?;
    let insns = system::loader_boot_insns(&outcome.stdout)
        .ok_or_else(|| anyhow::anyhow!("the loader printed no `{}` line", system::BOOT_COUNTER))?;
    let mut results = vec![report::BenchResult {
        name: "loader_boot_insns".into(),
        value: insns as f64,
        unit: "insns".into(),
    }];
    results.push(report::BenchResult {
        name: "image_size_total".into(),
        value: composed.total as f64,
        unit: "bytes".into(),
    });
    for r in &composed.rows {
        results.push(report::BenchResult {
            name: format!(
                "image_size_{}",
                r.part.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            value: r.image as f64,
            unit: "bytes".into(),
        });
    }
    Ok(results)
}

fn inspect(path: &Path) -> Result<()> {
    let bytes = build::read(path)?;
    let img = image::parse_image(&bytes).with_context(|| format!("{}", path.display()))?;
    println!("{}: entry {:#x}", path.display(), img.entry);
    for (ph, _) in &img.kernel_segments {
        println!(
            "  kernel PT_LOAD vaddr {:#x} paddr {:#x} filesz {:#x} memsz {:#x} flags {}{}{} align {:#x}",
            ph.p_vaddr,
            ph.p_paddr,
            ph.p_filesz,
            ph.p_memsz,
            if ph.p_flags & keel::elf::PF_R != 0 { "R" } else { "-" },
            if ph.p_flags & keel::elf::PF_W != 0 { "W" } else { "-" },
            if ph.p_flags & keel::elf::PF_X != 0 { "X" } else { "-" },
            ph.p_align
        );
    }
    println!(
        "  boot block at {:#x}, {} module(s)",
        img.block_address,
        img.modules.len()
    );
    for (i, m) in img.modules.iter().enumerate() {
        let kind = if m.kind == image::MODULE_ROOT_TASK {
            "root task ELF"
        } else {
            "unknown kind"
        };
        println!(
            "    module {i}: kind {} ({kind}), offset {:#x}, size {} bytes, at {:#x}",
            m.kind,
            m.offset,
            m.size,
            img.block_address + m.offset
        );
    }
    Ok(())
}
