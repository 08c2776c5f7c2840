//! The Linux guest: fetching Debian's arm64 kernel and busybox, building the initramfs, and
//! booting them directly in QEMU (the baseline the boot through Keel is measured against).
//!
//! `keel guest fetch` resolves the current bookworm kernel through the `linux-image-<flavour>`
//! metapackage (`linux-image-<abi>-<flavour>` → its `-unsigned` twin, which differs only by
//! the EFI signature), downloads it and `busybox-static` for arm64 with a private apt state
//! under the cache directory (the host's apt configuration, lists and dpkg architectures are
//! never touched: everything goes through `-o Dir::...` options), extracts the `Image`, the
//! kernel config and the virtio modules with the modules they depend on (read from each
//! `.ko`'s `.modinfo`), and builds the initramfs with our own cpio writer (`initramfs`
//! crate). A manifest (JSON) records the package versions and the sha256 of every output.
//!
//! # Must never
//!
//! - Change the host's apt or dpkg state, or write into the build tree.
//! - Leave a half-built guest behind: outputs are built in a scratch directory and renamed
//!   into place in one step, the manifest last.
//! - Hide what it boots: the manifest names the exact package versions.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The modules the guest's devices need (virtio-mmio transport, disk, network, console).
/// What they depend on is read from their `.modinfo`; built-in ones are skipped.
pub const WANTED_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "virtio_net", "virtio_console"];

/// Paths in the kernel package that hold the wanted modules and everything they may depend
/// on (in both the `arm64` and `cloud-arm64` flavours; every pattern must match something).
const MODULE_PATTERNS: &[&str] = &[
    "./lib/modules/*/kernel/drivers/virtio/*.ko",
    "./lib/modules/*/kernel/drivers/block/virtio_blk.ko",
    "./lib/modules/*/kernel/drivers/net/virtio_net.ko",
    "./lib/modules/*/kernel/drivers/net/net_failover.ko",
    "./lib/modules/*/kernel/net/core/failover.ko",
    "./lib/modules/*/kernel/drivers/char/virtio_console.ko",
    "./lib/modules/*/modules.builtin",
];

/// The line `/init` prints once user space is up (followed by the kernel release and the
/// number of CPUs).
pub const MARKER: &str = "KEEL-GUEST: init up";
/// The line Linux prints just before it runs `/init`.
pub const RUN_INIT: &str = "Run /init as init process";
/// The start of the guest shell's prompt (`images/linux/profile`).
pub const PROMPT: &str = "keel-guest:";
/// The kernel command line of the direct boot (and of the boot through Keel it is compared
/// with).
pub const CMDLINE: &str = "console=ttyAMA0 panic=-1";
/// Added to [`CMDLINE`] for the benchmark: `/init` powers off right after the marker.
pub const BENCH_FLAG: &str = "keel.bench";
/// The initramfs layout ([`build_initramfs`] and the `initramfs` writer): bump it when
/// either changes the archive, so that cached initramfs images are built again.
const INITRAMFS_LAYOUT: u64 = 1;
/// Manifest format version; a different one means "fetch again".
const MANIFEST_FORMAT: u64 = 1;

/// The guest's cache: `$KEEL_GUEST_CACHE`, else `$XDG_CACHE_HOME/keel/guest`, else
/// `~/.cache/keel/guest`. It holds `apt/` (the private apt state) and `linux/` (the outputs
/// and `manifest.json`).
pub fn cache_dir() -> Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("KEEL_GUEST_CACHE") {
        return Ok(PathBuf::from(d));
    }
    let base = match env("XDG_CACHE_HOME") {
        Some(x) => PathBuf::from(x),
        None => {
            PathBuf::from(env("HOME").ok_or_else(|| anyhow!("HOME is not set"))?).join(".cache")
        }
    };
    Ok(base.join("keel").join("guest"))
}

/// What `keel guest fetch` should get.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cache directory ([`cache_dir`]).
    pub cache: PathBuf,
    /// The directory with `init`, `inittab` and `profile` (the workspace's `images/linux`).
    pub init_dir: PathBuf,
    /// The kernel flavour: `arm64` or `cloud-arm64` (the metapackage is
    /// `linux-image-<flavour>`).
    pub flavour: String,
    /// A kernel package to use instead of resolving the metapackage.
    pub kernel_package: Option<String>,
    /// Refresh the package lists (network) and fetch again if a newer kernel is out.
    pub update: bool,
}

/// The fetched guest: where its files are.
#[derive(Debug, Clone)]
pub struct GuestFiles {
    pub dir: PathBuf,
    pub image: PathBuf,
    pub initramfs: PathBuf,
    /// `uname -r` of the kernel, e.g. `6.1.0-57-arm64`.
    pub kernel_release: String,
    pub manifest: Value,
}

fn out_dir(cache: &Path) -> PathBuf {
    cache.join("linux")
}

/// The guest in `cache`, if a complete one is there (its manifest and every file it names,
/// with the recorded size).
pub fn installed(cache: &Path) -> Result<Option<GuestFiles>> {
    let dir = out_dir(cache);
    let path = dir.join("manifest.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A damaged manifest means fetching again, as a missing one does.
    let Ok(manifest) = serde_json::from_str::<Value>(&text) else {
        return Ok(None);
    };
    if manifest["format"].as_u64() != Some(MANIFEST_FORMAT) {
        return Ok(None);
    }
    let Some(files) = manifest["files"].as_object() else {
        return Ok(None);
    };
    for (name, f) in files {
        let size = std::fs::metadata(dir.join(name)).map(|m| m.len()).ok();
        if size.is_none() || size != f["size"].as_u64() {
            return Ok(None);
        }
    }
    let kernel_release = manifest["kernel_release"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(Some(GuestFiles {
        image: dir.join("Image"),
        initramfs: dir.join("initramfs.cpio"),
        dir,
        kernel_release,
        manifest,
    }))
}

/// The guest for tests and benchmarks: `$KEEL_GUEST_DIR` (a directory with `Image` and
/// `initramfs.cpio`, e.g. your own kernel) or the fetched one.
pub fn locate() -> Result<Option<GuestFiles>> {
    if let Some(d) = std::env::var_os("KEEL_GUEST_DIR").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(d);
        let image = dir.join("Image");
        let initramfs = dir.join("initramfs.cpio");
        for f in [&image, &initramfs] {
            if !f.is_file() {
                bail!("KEEL_GUEST_DIR: {} does not exist", f.display());
            }
        }
        return Ok(Some(GuestFiles {
            dir,
            image,
            initramfs,
            kernel_release: String::new(),
            manifest: Value::Null,
        }));
    }
    installed(&cache_dir()?)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The private apt state: a sources file derived from the host's Debian sources (bookworm
/// suites only, arm64), and lists and downloads under `cache/apt`.
struct Apt {
    root: PathBuf,
}

impl Apt {
    fn options(&self) -> Vec<OsString> {
        let d = |p: &str| self.root.join(p).into_os_string();
        let mut o: Vec<OsString> = Vec::new();
        let mut set = |k: &str, v: OsString| {
            o.push("-o".into());
            let mut s = OsString::from(format!("{k}="));
            s.push(v);
            o.push(s);
        };
        set("Dir::Etc::sourcelist", "/dev/null".into());
        set("Dir::Etc::sourceparts", d("sources.list.d"));
        set("Dir::State::lists", d("lists"));
        set("Dir::Cache", d("cache"));
        set("Dir::State::status", "/dev/null".into());
        set("APT::Architecture", "arm64".into());
        set("APT::Architectures::", "arm64".into());
        set("Debug::NoLocking", "1".into());
        // No AppStream metadata: only the package lists are needed.
        set(
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled",
            "false".into(),
        );
        set(
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled",
            "false".into(),
        );
        set(
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled",
            "false".into(),
        );
        o
    }

    fn run(&self, tool: &str, args: &[&str], cwd: Option<&Path>) -> Result<String> {
        self.run_full(tool, args, cwd).map(|(out, _)| out)
    }

    /// Runs an apt tool with the private state; its stdout and stderr.
    fn run_full(&self, tool: &str, args: &[&str], cwd: Option<&Path>) -> Result<(String, String)> {
        let mut cmd = Command::new(tool);
        cmd.args(self.options()).args(args);
        // As root, apt drops to the `_apt` user for downloads, which cannot write into a
        // cache under root's home (as another user apt does not switch at all).
        cmd.args(["-o", "APT::Sandbox::User=root"]);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {tool} (is this a Debian machine?)"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!(
                "`{tool} {}` failed ({}):\n{stdout}{stderr}",
                args.join(" "),
                out.status,
            );
        }
        Ok((stdout, stderr))
    }

    /// Writes the sources file from the host's. Returns whether it changed.
    fn write_sources(&self) -> Result<bool> {
        let host = host_sources()?;
        let text = guest_sources(&host)?;
        let dir = self.root.join("sources.list.d");
        for d in [
            dir.clone(),
            self.root.join("lists/partial"),
            self.root.join("cache/archives/partial"),
        ] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        let path = dir.join("guest.sources");
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(true)
    }

    fn have_lists(&self) -> bool {
        std::fs::read_dir(self.root.join("lists")).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
    }

    fn update(&self) -> Result<()> {
        let t = Instant::now();
        self.update_lists()?;
        log(&format!(
            "apt-get update (private state, arm64) in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    fn update_lists(&self) -> Result<()> {
        const WHY: &str = "cannot fetch Debian's package lists: is Debian's archive reachable? \
                           (apt's proxy settings in /etc/apt/apt.conf.d apply)";
        let (out, err) = self
            .run_full("apt-get", &["-q", "update"], None)
            .context(WHY)?;
        // apt-get update exits 0 when a source cannot be reached; it warns instead.
        let problems: Vec<&str> = out
            .lines()
            .chain(err.lines())
            .filter(|l| l.starts_with("Err:") || l.starts_with("W:") || l.starts_with("E:"))
            .collect();
        if !self.have_lists() || problems.iter().any(|l| !l.starts_with("W:")) {
            bail!("{WHY}\napt-get update said:\n{}", problems.join("\n"));
        }
        Ok(())
    }
}

/// The host's Debian sources in deb822 form: `/etc/apt/sources.list.d/debian.sources`, or
/// `/etc/apt/sources.list` converted.
fn host_sources() -> Result<String> {
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    if let Ok(t) = std::fs::read_to_string(deb822) {
        return Ok(t);
    }
    let list = Path::new("/etc/apt/sources.list");
    let t = std::fs::read_to_string(list).with_context(|| {
        format!(
            "no Debian sources found ({} or {})",
            deb822.display(),
            list.display()
        )
    })?;
    Ok(one_line_to_deb822(&t))
}

/// `deb [signed-by=...] URI SUITE COMPONENTS...` lines as deb822 stanzas (other lines and
/// options are dropped).
fn one_line_to_deb822(t: &str) -> String {
    let mut out = String::new();
    for line in t.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut words = rest.split_whitespace().peekable();
        let mut signed_by = None;
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            let mut opts = String::new();
            for w in words.by_ref() {
                opts.push_str(w);
                opts.push(' ');
                if w.ends_with(']') {
                    break;
                }
            }
            signed_by = opts
                .trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by=").map(str::to_string));
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        let comps: Vec<&str> = words.collect();
        out.push_str(&format!(
            "Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: {}\n",
            comps.join(" ")
        ));
        if let Some(s) = signed_by {
            out.push_str(&format!("Signed-By: {s}\n"));
        }
        out.push('\n');
    }
    out
}

/// The private sources: the host's `deb` stanzas for bookworm (its updates and security
/// suites too, where kernel updates land; not backports), restricted to arm64.
fn guest_sources(host: &str) -> Result<String> {
    let mut out =
        String::from("# Written by `keel guest fetch` from the host's Debian sources.\n\n");
    let mut n = 0;
    for stanza in host.split("\n\n") {
        let lines: Vec<&str> = stanza
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        let field = |k: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                .map(str::trim)
        };
        if !field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
            || field("Enabled") == Some("no")
        {
            continue;
        }
        let suites: Vec<&str> = field("Suites")
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| matches!(*s, "bookworm" | "bookworm-updates" | "bookworm-security"))
            .collect();
        if suites.is_empty() {
            continue;
        }
        for l in &lines {
            let key = l.split(':').next().unwrap_or_default();
            match key {
                "Types" => out.push_str("Types: deb\n"),
                "Suites" => out.push_str(&format!("Suites: {}\n", suites.join(" "))),
                "Architectures" | "Enabled" => {}
                _ => {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out.push_str("Architectures: arm64\n\n");
        n += 1;
    }
    if n == 0 {
        bail!("the host's Debian sources have no bookworm suite");
    }
    Ok(out)
}

/// The package `linux-image-<flavour>` depends on (`apt-cache depends` output).
fn metapackage_target(depends: &str, flavour: &str) -> Option<String> {
    let prefix = "linux-image-";
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|p| p.trim().trim_start_matches('|').trim())
        .find(|p| p.starts_with(prefix) && p.ends_with(&format!("-{flavour}")))
        .map(|p| p.split(':').next().unwrap_or(p).to_string())
}

/// The candidate version of each package in `apt-cache policy` output (packages without
/// one are left out).
fn candidate_versions(policy: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut package = None;
    for l in policy.lines() {
        if !l.starts_with(char::is_whitespace) && l.ends_with(':') {
            let name = l.trim_end_matches(':');
            package = Some(name.strip_suffix(":arm64").unwrap_or(name).to_string());
        } else if let (Some(p), Some(v)) = (&package, l.trim().strip_prefix("Candidate:")) {
            let v = v.trim();
            if v != "(none)" {
                out.insert(p.clone(), v.to_string());
            }
        }
    }
    out
}

/// A `.ko`'s `.modinfo` section as key=value pairs (keys may repeat, e.g. `alias`).
pub fn modinfo(ko: &[u8]) -> Result<Vec<(String, String)>> {
    use elf::endian::AnyEndian;
    let file = elf::ElfBytes::<AnyEndian>::minimal_parse(ko).map_err(|e| anyhow!("{e}"))?;
    let shdr = file
        .section_header_by_name(".modinfo")
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("no .modinfo section"))?;
    let (data, _) = file.section_data(&shdr).map_err(|e| anyhow!("{e}"))?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let s = std::str::from_utf8(kv).ok()?;
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// A kernel module found in the package.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub path: PathBuf,
    pub depends: Vec<String>,
    pub vermagic: String,
}

/// Module names use `_`; file names and `depends=` may use `-`.
fn module_name(s: &str) -> String {
    s.replace('-', "_")
}

/// The modules to load for `wanted`, each after the modules it depends on (depth first, in
/// the order given). Built-in modules are skipped; anything else missing is an error.
pub fn load_order(
    wanted: &[&str],
    available: &BTreeMap<String, Module>,
    builtin: &BTreeSet<String>,
) -> Result<Vec<String>> {
    fn visit(
        name: &str,
        needed_by: &str,
        available: &BTreeMap<String, Module>,
        builtin: &BTreeSet<String>,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        if builtin.contains(name) || order.iter().any(|m| m == name) {
            return Ok(());
        }
        if path.iter().any(|m| m == name) {
            bail!(
                "modules depend on each other in a cycle: {} -> {name}",
                path.join(" -> ")
            );
        }
        let m = available.get(name).ok_or_else(|| {
            anyhow!(
                "module `{name}` (needed by {needed_by}) is neither built in nor among the \
                 extracted modules"
            )
        })?;
        path.push(name.to_string());
        for d in &m.depends {
            visit(d, name, available, builtin, order, path)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for w in wanted {
        visit(
            w,
            "the guest",
            available,
            builtin,
            &mut order,
            &mut Vec::new(),
        )?;
    }
    Ok(order)
}

/// Reads every `.ko` under `dir` (recursively).
fn scan_modules(dir: &Path) -> Result<BTreeMap<String, Module>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ko") {
                let bytes = crate::build::read(&p)?;
                let info = modinfo(&bytes).with_context(|| format!("{}", p.display()))?;
                let get = |k: &str| info.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
                let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                let name = module_name(&get("name").unwrap_or_else(|| stem.into_owned()));
                let depends = get("depends")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(module_name)
                    .collect();
                out.insert(
                    name.clone(),
                    Module {
                        name,
                        path: p,
                        depends,
                        vermagic: get("vermagic").unwrap_or_default(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The names in `modules.builtin` (`kernel/drivers/virtio/virtio.ko` → `virtio`).
fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| Path::new(l.trim()).file_stem())
        .map(|s| module_name(&s.to_string_lossy()))
        .collect()
}

/// Modules for the initramfs: (name, bytes) in load order.
type Modules = Vec<(String, Vec<u8>)>;

/// The inputs of the initramfs besides the binaries: `init`, `inittab`, `profile`.
const INIT_FILES: &[(&str, &str, u32)] = &[
    ("init", "init", 0o755),
    ("inittab", "etc/inittab", 0o644),
    ("profile", "etc/profile", 0o644),
];

/// Builds the initramfs: busybox, `/init`, busybox init's table and profile, `/dev/console`,
/// the modules in `lib/modules/` and their order in `lib/modules/load-order`.
pub fn build_initramfs(
    init_dir: &Path,
    busybox: &[u8],
    modules: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    let mut a = initramfs::Archive::new();
    let e = |r: std::result::Result<(), initramfs::Error>| r.map_err(|e| anyhow!("{e}"));
    for d in [
        "bin",
        "dev",
        "etc",
        "mnt",
        "root",
        "sys",
        "tmp",
        "lib/modules",
    ] {
        e(a.dir(d, 0o755))?;
    }
    e(a.dir("proc", 0o555))?;
    // Linux opens /dev/console for init's stdio before /init can mount devtmpfs.
    e(a.char_dev("dev/console", 0o600, 5, 1))?;
    e(a.file("bin/busybox", 0o755, busybox.to_vec()))?;
    e(a.symlink("bin/sh", "busybox"))?;
    for (file, at, perm) in INIT_FILES {
        let p = init_dir.join(file);
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        e(a.file(at, *perm, bytes))?;
    }
    let mut order = String::new();
    for (name, bytes) in modules {
        e(a.file(&format!("lib/modules/{name}.ko"), 0o644, bytes.clone()))?;
        order.push_str(name);
        order.push('\n');
    }
    e(a.file("lib/modules/load-order", 0o644, order.into_bytes()))?;
    Ok(a.to_bytes())
}

/// What the initramfs is built from, to know when to build it again.
fn initramfs_inputs(init_dir: &Path) -> Result<Value> {
    let mut m = serde_json::Map::new();
    for (file, _, _) in INIT_FILES {
        let p = init_dir.join(file);
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        m.insert((*file).into(), json!(sha256_hex(&bytes)));
    }
    m.insert("layout".into(), json!(INITRAMFS_LAYOUT));
    Ok(Value::Object(m))
}

fn run_pipeline(script: &str, args: &[&OsString]) -> Result<()> {
    let out = Command::new("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .arg("keel-guest")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run bash")?;
    if !out.status.success() {
        bail!(
            "extraction failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn file_entry(path: &Path) -> Result<Value> {
    let bytes = crate::build::read(path)?;
    Ok(json!({ "size": bytes.len(), "sha256": sha256_hex(&bytes) }))
}

fn log(msg: &str) {
    eprintln!("keel guest: {msg}");
}

/// `keel guest fetch`: makes sure the guest is in the cache and returns it.
pub fn fetch(opts: &FetchOptions) -> Result<GuestFiles> {
    let started = Instant::now();
    // One fetch at a time per cache (worktrees and users of one machine share it).
    std::fs::create_dir_all(&opts.cache)
        .with_context(|| format!("cannot create {}", opts.cache.display()))?;
    let lock_path = opts.cache.join("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        log("waiting for another `keel guest fetch` on this cache");
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    let out = out_dir(&opts.cache);
    let inputs = initramfs_inputs(&opts.init_dir)?;
    let current = installed(&opts.cache)?;
    let same_request = |g: &GuestFiles| {
        g.manifest["request"]
            == json!({ "flavour": opts.flavour, "kernel_package": opts.kernel_package })
    };
    if let Some(g) = &current {
        if !opts.update && same_request(g) {
            if g.manifest["initramfs_inputs"] != inputs {
                log("init files changed: building the initramfs again");
                return rebuild_initramfs(opts, g, inputs);
            }
            log(&format!(
                "up to date: {} {} ({:.2} s; `--update` looks for a newer kernel)",
                g.manifest["packages"]["kernel"]["name"]
                    .as_str()
                    .unwrap_or("?"),
                g.manifest["packages"]["kernel"]["version"]
                    .as_str()
                    .unwrap_or("?"),
                started.elapsed().as_secs_f64()
            ));
            return Ok(g.clone());
        }
    }
    let apt = Apt {
        root: opts.cache.join("apt"),
    };
    let sources_changed = apt.write_sources()?;
    let mut updated = false;
    if opts.update || sources_changed || !apt.have_lists() {
        apt.update()?;
        updated = true;
    }
    let (mut kernel_pkg, mut versions) = match resolve(&apt, opts) {
        Err(_) if !updated => {
            // Perhaps only the lists are old.
            apt.update()?;
            updated = true;
            resolve(&apt, opts)?
        }
        r => r?,
    };
    if let Some(g) = &current {
        let k = &g.manifest["packages"]["kernel"];
        let b = &g.manifest["packages"]["busybox"];
        if same_request(g)
            && k["name"] == json!(kernel_pkg)
            && k["version"] == json!(versions[&kernel_pkg])
            && b["version"] == json!(versions["busybox-static"])
        {
            log(&format!(
                "up to date: {kernel_pkg} {} is the newest",
                versions[&kernel_pkg]
            ));
            if g.manifest["initramfs_inputs"] != inputs {
                return rebuild_initramfs(opts, g, inputs);
            }
            return Ok(g.clone());
        }
    }
    // About to download: lists from an earlier run may name packages the archive no longer
    // has (the kernel's ABI moves), so refresh them first.
    if !updated {
        apt.update()?;
        (kernel_pkg, versions) = resolve(&apt, opts)?;
    }

    // Download into a fresh directory.
    let debs = opts.cache.join("debs");
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs)?;
    let t = Instant::now();
    log(&format!(
        "downloading {kernel_pkg} {} and busybox-static {}",
        versions[&kernel_pkg], versions["busybox-static"]
    ));
    apt.run(
        "apt-get",
        &["-q", "download", &kernel_pkg, "busybox-static"],
        Some(&debs),
    )
    .context("cannot download the guest packages (is Debian's archive reachable?)")?;
    let find_deb = |prefix: &str| -> Result<PathBuf> {
        std::fs::read_dir(&debs)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{prefix}_")))
            })
            .ok_or_else(|| anyhow!("apt-get download left no {prefix}_*.deb"))
    };
    let kdeb = find_deb(&kernel_pkg)?;
    let bdeb = find_deb("busybox-static")?;
    log(&format!("downloaded in {:.1} s", t.elapsed().as_secs_f64()));

    // Extract into a scratch directory.
    let t = Instant::now();
    let scratch = opts.cache.join("linux.tmp");
    let _ = std::fs::remove_dir_all(&scratch);
    let (release, order, modules) = extract(&kdeb, &bdeb, &kernel_pkg, &scratch)?;
    log(&format!(
        "extracted kernel {release} and modules {} in {:.1} s",
        order.join(" "),
        t.elapsed().as_secs_f64()
    ));

    let busybox = crate::build::read(&scratch.join("busybox"))?;
    let cpio = build_initramfs(&opts.init_dir, &busybox, &modules)?;
    std::fs::write(scratch.join("initramfs.cpio"), &cpio)?;

    let mut files = serde_json::Map::new();
    for f in ["Image", "config", "busybox", "initramfs.cpio"] {
        files.insert(f.into(), file_entry(&scratch.join(f))?);
    }
    for name in &order {
        let f = format!("modules/{name}.ko");
        files.insert(f.clone(), file_entry(&scratch.join(&f))?);
    }
    let deb_entry = |name: &str, deb: &Path| -> Result<Value> {
        Ok(json!({
            "name": name,
            "version": versions[name],
            "architecture": "arm64",
            "deb_sha256": sha256_hex(&crate::build::read(deb)?),
        }))
    };
    let manifest = json!({
        "format": MANIFEST_FORMAT,
        "request": { "flavour": opts.flavour, "kernel_package": opts.kernel_package },
        "packages": {
            "kernel": deb_entry(&kernel_pkg, &kdeb)?,
            "busybox": deb_entry("busybox-static", &bdeb)?,
        },
        "kernel_release": release,
        "modules": order,
        "files": files,
        "initramfs_inputs": inputs,
    });
    std::fs::write(
        scratch.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    // Swap the new guest in; the debs are not needed any more.
    let _ = std::fs::remove_dir_all(&out);
    std::fs::rename(&scratch, &out)
        .with_context(|| format!("cannot move {} to {}", scratch.display(), out.display()))?;
    let _ = std::fs::remove_dir_all(&debs);
    log(&format!(
        "guest ready in {} ({:.1} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    installed(&opts.cache)?
        .ok_or_else(|| anyhow!("the new guest in {} does not check", out.display()))
}

/// Extracts from the kernel package `kdeb` and busybox's `bdeb` into `scratch`: `Image`,
/// `config`, `busybox` and `modules/<name>.ko` for the load order. Returns the kernel's
/// release, the load order and the modules (name, bytes).
fn extract(
    kdeb: &Path,
    bdeb: &Path,
    kernel_pkg: &str,
    scratch: &Path,
) -> Result<(String, Vec<String>, Modules)> {
    let x = scratch.join("x");
    std::fs::create_dir_all(&x)?;
    let mut pattern_args: Vec<OsString> = vec![kdeb.to_path_buf().into(), x.clone().into()];
    pattern_args.extend(
        ["./boot/vmlinuz-*", "./boot/config-*"]
            .iter()
            .chain(MODULE_PATTERNS)
            .map(OsString::from),
    );
    let refs: Vec<&OsString> = pattern_args.iter().collect();
    run_pipeline(
        r#"deb=$1; dir=$2; shift 2; dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards "$@""#,
        &refs,
    )
    .with_context(|| format!("extracting {}", kdeb.display()))?;
    let bb_args: Vec<OsString> = vec![bdeb.to_path_buf().into(), x.clone().into()];
    run_pipeline(
        r#"dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./bin/busybox"#,
        &bb_args.iter().collect::<Vec<_>>(),
    )
    .with_context(|| format!("extracting {}", bdeb.display()))?;

    // The kernel: boot/vmlinuz-<release>, an uncompressed arm64 Image on bookworm.
    let vmlinuz = std::fs::read_dir(x.join("boot"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| anyhow!("{kernel_pkg} has no boot/vmlinuz-*"))?;
    let release = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let image = crate::build::read(&vmlinuz)?;
    check_arm64_image(&image).with_context(|| format!("{}", vmlinuz.display()))?;
    std::fs::rename(&vmlinuz, scratch.join("Image"))?;
    std::fs::rename(
        x.join(format!("boot/config-{release}")),
        scratch.join("config"),
    )
    .with_context(|| format!("{kernel_pkg} has no boot/config-{release}"))?;
    std::fs::rename(x.join("bin/busybox"), scratch.join("busybox"))?;

    // The modules and their order.
    let mod_root = x.join("lib/modules").join(&release);
    let available = scan_modules(&mod_root.join("kernel"))?;
    let builtin = parse_builtin(
        &std::fs::read_to_string(mod_root.join("modules.builtin")).unwrap_or_default(),
    );
    let order = load_order(WANTED_MODULES, &available, &builtin)?;
    std::fs::create_dir_all(scratch.join("modules"))?;
    let mut modules = Vec::new();
    for name in &order {
        let m = &available[name];
        if !m.vermagic.starts_with(&format!("{release} ")) {
            bail!(
                "module {name} was built for {:?}, not for kernel {release}",
                m.vermagic
            );
        }
        let dest = scratch.join(format!("modules/{name}.ko"));
        std::fs::rename(&m.path, &dest)?;
        modules.push((name.clone(), crate::build::read(&dest)?));
    }
    std::fs::remove_dir_all(&x)?;
    Ok((release, order, modules))
}

/// The kernel package (the metapackage's target's `-unsigned` twin, or the one asked for)
/// and the candidate versions of it and of `busybox-static`, from the private lists.
fn resolve(apt: &Apt, opts: &FetchOptions) -> Result<(String, BTreeMap<String, String>)> {
    let kernel_pkg = match &opts.kernel_package {
        Some(p) => p.clone(),
        None => {
            let meta = format!("linux-image-{}", opts.flavour);
            let deps = apt.run("apt-cache", &["depends", &meta], None)?;
            let target = metapackage_target(&deps, &opts.flavour).ok_or_else(|| {
                anyhow!(
                    "cannot resolve {meta}: no linux-image-*-{} dependency in:\n{deps}",
                    opts.flavour
                )
            })?;
            format!("{target}-unsigned")
        }
    };
    let policy = apt.run(
        "apt-cache",
        &["policy", &kernel_pkg, "busybox-static"],
        None,
    )?;
    let versions = candidate_versions(&policy);
    for p in [kernel_pkg.as_str(), "busybox-static"] {
        if !versions.contains_key(p) {
            bail!("package {p} (arm64) is not in Debian's lists");
        }
    }
    Ok((kernel_pkg, versions))
}

/// Builds the initramfs again from the cached busybox and modules (the init files changed).
fn rebuild_initramfs(opts: &FetchOptions, g: &GuestFiles, inputs: Value) -> Result<GuestFiles> {
    let busybox = crate::build::read(&g.dir.join("busybox"))?;
    let mut modules = Vec::new();
    for m in g.manifest["modules"].as_array().into_iter().flatten() {
        let name = m.as_str().unwrap_or_default();
        modules.push((
            name.to_string(),
            crate::build::read(&g.dir.join(format!("modules/{name}.ko")))?,
        ));
    }
    let cpio = build_initramfs(&opts.init_dir, &busybox, &modules)?;
    let mut manifest = g.manifest.clone();
    manifest["files"]["initramfs.cpio"] =
        json!({ "size": cpio.len(), "sha256": sha256_hex(&cpio) });
    manifest["initramfs_inputs"] = inputs;
    // The archive first, then the manifest that describes it.
    let tmp = g.dir.join("initramfs.cpio.tmp");
    std::fs::write(&tmp, &cpio)?;
    std::fs::rename(&tmp, &g.initramfs)?;
    let tmp = g.dir.join("manifest.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::rename(&tmp, g.dir.join("manifest.json"))?;
    log(&format!("initramfs rebuilt: {} bytes", cpio.len()));
    installed(&opts.cache)?.ok_or_else(|| anyhow!("the rebuilt guest does not check"))
}

/// Checks the arm64 `Image` header: the magic `ARM\x64` at offset 0x38.
pub fn check_arm64_image(image: &[u8]) -> Result<()> {
    if image.starts_with(&[0x1f, 0x8b]) {
        bail!("a gzip-compressed kernel; an uncompressed arm64 Image is expected");
    }
    if image.get(0x38..0x3c) != Some(b"ARM\x64".as_slice()) {
        bail!("not an arm64 Image (no ARM\\x64 magic at 0x38)");
    }
    Ok(())
}

/// The QEMU arguments of the direct boot: Linux at EL1 on `virt` with 2 CPUs and 256 MiB, no
/// NIC, the serial console on stdio.
pub fn direct_boot_args(g: &GuestFiles, cmdline: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "-M",
        "virt",
        "-cpu",
        "cortex-a72",
        "-m",
        "256M",
        "-smp",
        "2",
        "-nographic",
        "-nic",
        "none",
        "-kernel",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.push(g.image.clone().into());
    a.push("-initrd".into());
    a.push(g.initramfs.clone().into());
    a.push("-append".into());
    a.push(cmdline.into());
    a
}

/// A guest console driven through QEMU's stdin and stdout.
pub struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    pub started: Instant,
}

impl Console {
    pub fn spawn(mut cmd: Command) -> Result<Console> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "{} not found; run `just setup`",
                    cmd.get_program().to_string_lossy()
                )
            } else {
                anyhow::Error::new(e).context("cannot start QEMU")
            }
        })?;
        let out: Arc<Mutex<Vec<u8>>> = Arc::default();
        for r in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = Arc::clone(&out);
            thread::spawn(move || {
                let mut r = r;
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            });
        }
        Ok(Console {
            stdin: child.stdin.take(),
            child,
            out,
            started: Instant::now(),
        })
    }

    /// Everything printed so far (console and QEMU's messages).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    fn fail(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "{what}\n--- console log ---\n{}\n--- end of console log ---",
            self.log()
        )
    }

    /// Waits until the output after byte `from` contains `needle`; returns the offset just
    /// past it.
    pub fn wait_for(&mut self, needle: &str, from: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tail) = out.get(from..) {
                    if let Some(i) = tail
                        .windows(needle.len())
                        .position(|w| w == needle.as_bytes())
                    {
                        return Ok(from + i + needle.len());
                    }
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // The reader threads may still hold the last bytes.
                thread::sleep(Duration::from_millis(100));
                if self.log().get(from..).is_some_and(|t| t.contains(needle)) {
                    continue;
                }
                return Err(self.fail(&format!("QEMU exited ({st}) before printing {needle:?}")));
            }
            if Instant::now() >= deadline {
                return Err(self.fail(&format!(
                    "{needle:?} did not appear within {} s",
                    timeout.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first whole line after byte `from` that starts with `prefix`, waiting for it.
    pub fn wait_line(
        &mut self,
        prefix: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<(String, usize)> {
        let needle = format!("\n{prefix}");
        let at = self.wait_for(&needle, from, timeout)?;
        let end = self.wait_for("\n", at, timeout)?;
        let log = self.log();
        let line = log.get(at - prefix.len()..end).unwrap_or_default();
        Ok((line.trim_end().to_string(), end))
    }

    /// Types `text` on the console.
    pub fn send(&mut self, text: &str) -> Result<()> {
        let r = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("stdin closed"))
            .and_then(|s| {
                s.write_all(text.as_bytes())
                    .and_then(|_| s.flush())
                    .map_err(Into::into)
            });
        r.map_err(|e| self.fail(&format!("cannot type on the console: {e}")))
    }

    /// Waits for QEMU to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait()? {
                thread::sleep(Duration::from_millis(50));
                return Ok(st);
            }
            if Instant::now() >= deadline {
                return Err(self.fail(&format!("QEMU did not exit within {} s", timeout.as_secs())));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A QEMU process with the guest booted directly.
pub fn direct_boot(g: &GuestFiles, cmdline: &str, extra: &[OsString]) -> Result<Console> {
    let mut cmd = Command::new(crate::qemu::qemu_program());
    cmd.args(direct_boot_args(g, cmdline)).args(extra);
    Console::spawn(cmd)
}

/// What [`check_direct_boot`] saw.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The marker line.
    pub marker: String,
    /// Wall seconds from starting QEMU to the marker, first boot.
    pub marker_s: f64,
    /// What `grep -c processor /proc/cpuinfo` printed.
    pub cpus: u32,
    /// Wall seconds `sleep 1` took, as seen from the host.
    pub sleep_s: f64,
    /// The whole console log.
    pub log: String,
}

/// Boots the guest directly and drives its console as a person would: Linux runs `/init`,
/// the marker appears, the shell answers, the guest sees 2 CPUs, `sleep 1` returns after a
/// second, Ctrl-C interrupts a foreground `sleep` (job control on the real tty), `reboot`
/// boots it again, and `poweroff` makes QEMU exit with 0. Fails with the console log.
pub fn check_direct_boot(g: &GuestFiles, timeout: Duration) -> Result<CheckReport> {
    let mut con = direct_boot(g, CMDLINE, &["-monitor".into(), "none".into()])?;
    let short = Duration::from_secs(30);
    let at = con.wait_for(RUN_INIT, 0, timeout)?;
    let (marker, at) = con.wait_line(MARKER, at, short)?;
    let marker_s = con.started.elapsed().as_secs_f64();
    if !marker.ends_with(", 2 cpus") {
        return Err(con.fail(&format!("the marker does not say 2 cpus: {marker:?}")));
    }
    if !g.kernel_release.is_empty() && !marker.contains(&format!("kernel {},", g.kernel_release)) {
        return Err(con.fail(&format!(
            "the marker does not name kernel {}: {marker:?}",
            g.kernel_release
        )));
    }
    // The answers are computed by the shell (`$((...))`), so the echo of the typed command
    // cannot match them.
    let at = con.wait_for(PROMPT, at, short)?;
    let at = con.wait_for("# ", at, short)?;
    con.send("echo CPUS=$(cat /proc/cpuinfo | grep -c processor)\n")?;
    let (line, at) = con.wait_line("CPUS=", at, short)?;
    let cpus: u32 = line
        .trim_start_matches("CPUS=")
        .parse()
        .map_err(|_| con.fail(&format!("not a CPU count: {line:?}")))?;
    if cpus != 2 {
        return Err(con.fail(&format!("the guest sees {cpus} CPUs, not 2")));
    }
    // Every module of the load order is in (a failed insmod also prints a line).
    if let Some(order) = g.manifest["modules"].as_array() {
        con.send("echo MODULES=$(cut -d' ' -f1 /proc/modules | sort | tr '\\n' ,)\n")?;
        let (line, _) = con.wait_line("MODULES=", at, short)?;
        let mut want: Vec<&str> = order.iter().filter_map(Value::as_str).collect();
        want.sort_unstable();
        let want = format!("MODULES={},", want.join(","));
        if line != want {
            return Err(con.fail(&format!("loaded modules: {line:?}, expected {want:?}")));
        }
    }
    let t = Instant::now();
    con.send("sleep 1; echo SLEPT-$((40+2))\n")?;
    let at = con.wait_for("SLEPT-42", at, short)?;
    let sleep_s = t.elapsed().as_secs_f64();
    if sleep_s < 1.0 {
        return Err(con.fail(&format!("`sleep 1` returned after {sleep_s:.2} s")));
    }
    // Ctrl-C reaches the foreground job: without a controlling tty it would not, and the
    // echo would come 60 s later.
    con.send("sleep 60\n")?;
    thread::sleep(Duration::from_millis(500));
    con.send("\x03")?;
    con.send("echo INTERRUPTED-$((2+3))\n")?;
    let at = con.wait_for("INTERRUPTED-5", at, Duration::from_secs(20))?;
    // reboot: PSCI SYSTEM_RESET, QEMU resets the machine and Linux boots again.
    con.send("reboot\n")?;
    let at = con.wait_for(RUN_INIT, at, timeout)?;
    let (_, at) = con.wait_line(MARKER, at, short)?;
    let at = con.wait_for(PROMPT, at, short)?;
    let _ = con.wait_for("# ", at, short)?;
    con.send("poweroff\n")?;
    let st = con.wait_exit(short)?;
    if st.code() != Some(0) {
        return Err(con.fail(&format!("QEMU exited with {st} after poweroff, not 0")));
    }
    Ok(CheckReport {
        marker,
        marker_s,
        cpus,
        sleep_s,
        log: con.log(),
    })
}

/// What [`bench_direct_boot`] measured.
#[derive(Debug, Clone, Copy)]
pub struct BootFigures {
    /// Instructions QEMU executed (all CPUs, `-icount shift=0`) from reset to the guest's
    /// power-off right after the marker.
    pub insns: u64,
    /// Wall seconds from starting QEMU to the marker on the console.
    pub wall_s: f64,
}

/// Boots the guest directly under `-icount shift=0` with [`BENCH_FLAG`] (its `/init` powers
/// off right after the marker); see [`bench_boot`].
pub fn bench_direct_boot(g: &GuestFiles, timeout: Duration) -> Result<BootFigures> {
    let mut cmd = Command::new(crate::qemu::qemu_program());
    cmd.args(direct_boot_args(g, &format!("{CMDLINE} {BENCH_FLAG}")))
        .args(["-monitor", "none"]);
    bench_boot(cmd, timeout)
}

/// Measures a boot to [`MARKER`]: runs `cmd` (a QEMU command without `-icount`) with
/// `-icount shift=0 -no-shutdown` and a QMP socket, notes the wall time when the marker
/// appears, waits until the machine powers off (PSCI `SYSTEM_OFF`; QEMU then stops instead of
/// exiting), and reads the executed-instruction count of all CPUs through QMP's
/// `query-replay` (QEMU's icount; no record/replay is active). The boot through Keel is to be
/// measured with this too, its command powering the machine off after the guest's marker.
pub fn bench_boot(mut cmd: Command, timeout: Duration) -> Result<BootFigures> {
    // One socket per run, also when runs overlap in one process (tests).
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sock =
        std::env::temp_dir().join(format!("keel-guest-qmp-{}-{run}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let mut qmp_arg = OsString::from("unix:");
    qmp_arg.push(&sock);
    qmp_arg.push(",server=on,wait=off");
    cmd.args(["-icount", "shift=0", "-no-shutdown", "-qmp"])
        .arg(qmp_arg);
    let mut con = Console::spawn(cmd)?;
    let result = (|| {
        con.wait_for(MARKER, 0, timeout)?;
        let wall_s = con.started.elapsed().as_secs_f64();
        let mut qmp = Qmp::connect(&sock, Duration::from_secs(10))?;
        let deadline = Instant::now() + timeout;
        loop {
            let st = qmp.execute("query-status")?;
            if st["status"] == "shutdown" {
                break;
            }
            if Instant::now() >= deadline {
                bail!("the machine did not power off after the marker (status {st})");
            }
            thread::sleep(Duration::from_millis(20));
        }
        let replay = qmp.execute("query-replay")?;
        let insns = replay["icount"]
            .as_u64()
            .ok_or_else(|| anyhow!("query-replay gave no icount: {replay}"))?;
        let _ = qmp.execute("quit");
        Ok(BootFigures { insns, wall_s })
    })();
    let _ = std::fs::remove_file(&sock);
    result.map_err(|e: anyhow::Error| anyhow!("{e:#}\n--- console log ---\n{}", con.log()))
}

/// A minimal QMP client (one command at a time, events skipped).
struct Qmp {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Qmp {
    fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(e)
                        .with_context(|| format!("cannot connect to QMP at {}", path.display()))
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp {
            reader: std::io::BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        q.execute("qmp_capabilities")?;
        Ok(q)
    }

    fn read(&mut self) -> Result<Value> {
        use std::io::BufRead;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP closed the connection");
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn execute(&mut self, cmd: &str) -> Result<Value> {
        self.writer
            .write_all(format!("{}\n", json!({ "execute": cmd })).as_bytes())?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                bail!("QMP {cmd}: {e}");
            }
            // An event: skip it.
        }
    }
}

/// `keel guest ...`.
#[derive(clap::Subcommand, Debug)]
pub enum GuestCmd {
    /// Fetch Debian's arm64 kernel and busybox into the cache and build the initramfs
    /// (idempotent: does nothing when the guest is there); prints the guest's directory.
    Fetch {
        /// Refresh the package lists and fetch again if Debian has a newer kernel.
        #[arg(long)]
        update: bool,
        /// Kernel flavour: the metapackage is linux-image-FLAVOUR (`arm64`, `cloud-arm64`).
        #[arg(long, default_value = "arm64")]
        flavour: String,
        /// Use this kernel package (e.g. linux-image-6.1.0-57-arm64-unsigned) instead of
        /// resolving the metapackage.
        #[arg(long, value_name = "PACKAGE")]
        kernel_package: Option<String>,
        /// The directory with the guest's `init`, `inittab` and `profile` [default: the
        /// workspace's images/linux].
        #[arg(long, value_name = "DIR")]
        init_dir: Option<PathBuf>,
    },
    /// Boot the guest directly in QEMU at EL1 and check it (marker, 2 CPUs, sleep, Ctrl-C,
    /// reboot, poweroff).
    Check {
        /// Seconds allowed for each boot to reach /init.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Write the console log to FILE.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    },
    /// Boot the guest directly in QEMU with its console on this terminal (Ctrl-A x quits).
    Boot,
    /// Measure the direct boot to the init marker under -icount (instructions, wall time).
    Bench,
}

fn init_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/linux")
}

fn require() -> Result<GuestFiles> {
    locate()?.ok_or_else(|| {
        anyhow!(
            "no guest in {}; run `just guest` (keel guest fetch)",
            cache_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        )
    })
}

/// Runs a `keel guest` command; returns keel's exit code.
pub fn main(cmd: GuestCmd) -> Result<i32> {
    match cmd {
        GuestCmd::Fetch {
            update,
            flavour,
            kernel_package,
            init_dir: dir,
        } => {
            let g = fetch(&FetchOptions {
                cache: cache_dir()?,
                init_dir: dir.unwrap_or_else(init_dir),
                flavour,
                kernel_package,
                update,
            })?;
            println!("{}", g.dir.display());
            Ok(0)
        }
        GuestCmd::Check { timeout, log } => {
            let g = require()?;
            let r = check_direct_boot(&g, Duration::from_secs(timeout))?;
            if let Some(path) = log {
                std::fs::write(&path, &r.log)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!(
                "guest check: passed: {:?} after {:.1} s, {} cpus, sleep 1 took {:.2} s, Ctrl-C, reboot and poweroff work",
                r.marker, r.marker_s, r.cpus, r.sleep_s
            );
            Ok(0)
        }
        GuestCmd::Boot => {
            let g = require()?;
            let mut cmd = Command::new(crate::qemu::qemu_program());
            cmd.args(direct_boot_args(&g, CMDLINE));
            eprintln!(
                "keel: {} (Ctrl-A x quits)",
                crate::qemu::display_command(&cmd)
            );
            let st = cmd.status().context("cannot start QEMU")?;
            Ok(st.code().unwrap_or(1))
        }
        GuestCmd::Bench => {
            let g = require()?;
            let f = bench_direct_boot(&g, Duration::from_secs(300))?;
            println!("{}", bench_line(&f));
            Ok(0)
        }
    }
}

/// For `keel bench`: measures the direct boot when the guest is there (it is optional),
/// adds `linux_direct_boot_insns` and `linux_direct_boot_wall` to `results`, and returns the
/// line to print; `Err` when the guest is there but the measurement failed.
pub fn bench_results(results: &mut Vec<crate::report::BenchResult>) -> Result<String> {
    let Some(g) = locate()? else {
        return Ok("linux direct boot: skipped (no guest; run `just guest`)".into());
    };
    let f = bench_direct_boot(&g, Duration::from_secs(300))?;
    results.push(crate::report::BenchResult {
        name: "linux_direct_boot_insns".into(),
        value: f.insns as f64,
        unit: "insns".into(),
    });
    results.push(crate::report::BenchResult {
        name: "linux_direct_boot_wall".into(),
        value: f.wall_s,
        unit: "s".into(),
    });
    Ok(bench_line(&f))
}

/// The line `just bench` prints for the direct boot.
pub fn bench_line(f: &BootFigures) -> String {
    format!(
        "linux direct boot to init marker: {} insns, {:.2} s",
        f.insns, f.wall_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_keep_bookworm_suites_only_and_add_arm64() {
        let host = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/k.gpg\n\nTypes: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\nArchitectures: amd64\n";
        let g = guest_sources(host).unwrap();
        let stanzas: Vec<&str> = g.trim().split("\n\n").skip(1).collect();
        assert_eq!(stanzas.len(), 2, "{g}");
        assert_eq!(
            stanzas[0],
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/k.gpg\nArchitectures: arm64"
        );
        assert!(stanzas[1].contains("Suites: bookworm-security\n"));
        assert!(stanzas[1].ends_with("Architectures: arm64"));
        assert!(!stanzas[1].contains("amd64"));
        assert!(guest_sources("Types: deb\nSuites: trixie\nURIs: x\n").is_err());
    }

    #[test]
    fn one_line_sources_become_stanzas() {
        let list = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\ndeb-src http://m/debian bookworm main\ndeb http://m/debian-security bookworm-security main\n";
        let s = one_line_to_deb822(list);
        assert_eq!(
            s,
            "Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main contrib\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: http://m/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        );
        let g = guest_sources(&s).unwrap();
        assert_eq!(g.matches("Architectures: arm64").count(), 2, "{g}");
    }

    #[test]
    fn metapackage_and_candidate_parsing() {
        let deps = "linux-image-arm64\n  Depends: linux-image-6.1.0-57-arm64\n";
        assert_eq!(
            metapackage_target(deps, "arm64").as_deref(),
            Some("linux-image-6.1.0-57-arm64")
        );
        let cloud = "linux-image-cloud-arm64\n  Depends: linux-image-6.1.0-57-cloud-arm64\n";
        assert_eq!(
            metapackage_target(cloud, "cloud-arm64").as_deref(),
            Some("linux-image-6.1.0-57-cloud-arm64")
        );
        assert_eq!(metapackage_target("x\n  Depends: foo\n", "arm64"), None);
        let policy = "linux-image-6.1.0-57-arm64-unsigned:\n  Installed: (none)\n  Candidate: 6.1.192-3\n  Version table:\n     6.1.192-3 500\n        500 http://m/debian-security bookworm-security/main arm64 Packages\nbusybox-static:\n  Installed: (none)\n  Candidate: 1:1.35.0-4+deb12u1+b1\nx:arm64:\n  Candidate: (none)\n";
        let v = candidate_versions(policy);
        assert_eq!(
            v.get("busybox-static").map(String::as_str),
            Some("1:1.35.0-4+deb12u1+b1")
        );
        assert_eq!(
            v.get("linux-image-6.1.0-57-arm64-unsigned")
                .map(String::as_str),
            Some("6.1.192-3")
        );
        assert_eq!(v.len(), 2);
    }

    fn m(name: &str, deps: &[&str]) -> (String, Module) {
        (
            name.into(),
            Module {
                name: name.into(),
                path: PathBuf::new(),
                depends: deps.iter().map(|s| s.to_string()).collect(),
                vermagic: String::new(),
            },
        )
    }

    #[test]
    fn load_order_puts_dependencies_first_and_skips_builtins() {
        // The cloud flavour: virtio and virtio_ring are modules.
        let avail: BTreeMap<_, _> = [
            m("virtio", &[]),
            m("virtio_ring", &[]),
            m("virtio_mmio", &["virtio", "virtio_ring"]),
            m("virtio_blk", &["virtio", "virtio_ring"]),
            m("failover", &[]),
            m("net_failover", &["failover"]),
            m("virtio_net", &["net_failover", "virtio", "virtio_ring"]),
            m("virtio_console", &["virtio", "virtio_ring"]),
        ]
        .into_iter()
        .collect();
        let order = load_order(WANTED_MODULES, &avail, &BTreeSet::new()).unwrap();
        assert_eq!(
            order,
            [
                "virtio",
                "virtio_ring",
                "virtio_mmio",
                "virtio_blk",
                "failover",
                "net_failover",
                "virtio_net",
                "virtio_console"
            ]
        );
        // The arm64 flavour: virtio and virtio_ring are built in.
        let builtin: BTreeSet<String> = ["virtio".into(), "virtio_ring".into()].into();
        let order = load_order(WANTED_MODULES, &avail, &builtin).unwrap();
        assert_eq!(
            order,
            [
                "virtio_mmio",
                "virtio_blk",
                "failover",
                "net_failover",
                "virtio_net",
                "virtio_console"
            ]
        );
        // A dependency that is neither there nor built in.
        let mut gap = avail.clone();
        gap.remove("failover");
        let e = load_order(WANTED_MODULES, &gap, &builtin)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`failover` (needed by net_failover)"), "{e}");
        // A cycle.
        let cyc: BTreeMap<_, _> = [m("a", &["b"]), m("b", &["a"])].into_iter().collect();
        assert!(load_order(&["a"], &cyc, &BTreeSet::new())
            .unwrap_err()
            .to_string()
            .contains("cycle"));
    }

    #[test]
    fn builtin_names() {
        let b = parse_builtin("kernel/drivers/virtio/virtio.ko\nkernel/lib/crc-t10dif.ko\n");
        assert!(b.contains("virtio") && b.contains("crc_t10dif"));
    }

    #[test]
    fn image_header_check() {
        let mut img = vec![0u8; 64];
        assert!(check_arm64_image(&img).is_err());
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert!(check_arm64_image(&img).is_ok());
        assert!(check_arm64_image(&[0x1f, 0x8b, 8, 0]).is_err());
    }
}
