//! Where a guest's stage-2 fault goes: the guest-physical map of a VM (RAM, the GIC windows
//! the vCPU manager emulates, the device windows the VMM emulates) and the lookup of a faulting
//! access in it.

/// Most RAM ranges of a VM.
pub const MAX_RAM: usize = 4;
/// Most VMM device windows of a VM.
pub const MAX_DEVICES: usize = 16;

/// A guest-physical window `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub base: u64,
    pub size: u64,
}

impl Window {
    pub const fn new(base: u64, size: u64) -> Window {
        Window { base, size }
    }

    /// The offset of the access `[ipa, ipa + len)` in this window, if it lies wholly inside.
    pub const fn offset_of(&self, ipa: u64, len: u64) -> Option<u64> {
        if ipa < self.base || len == 0 {
            return None;
        }
        let off = ipa - self.base;
        match off.checked_add(len) {
            Some(end) if end <= self.size => Some(off),
            _ => None,
        }
    }

    const fn overlaps(&self, other: &Window) -> bool {
        self.base < other.base.wrapping_add(other.size)
            && other.base < self.base.wrapping_add(self.size)
    }

    const fn valid(&self) -> bool {
        self.size != 0 && self.base.checked_add(self.size).is_some()
    }
}

/// Who handles an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The GIC distributor, at this offset (the vCPU manager's vGIC).
    Gicd(u64),
    /// The GIC redistributors, at this offset.
    Gicr(u64),
    /// VMM device window `index`, at this offset.
    Device(usize, u64),
    /// Guest RAM: a stage-2 fault here is not an MMIO access (e.g. a permission fault).
    Ram,
    /// Nothing, or an access that straddles a window's end: inject an external abort.
    Unmapped,
}

/// Why a map is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Too many RAM ranges or device windows.
    TooMany,
    /// An empty window or one that wraps past the end of the address space.
    BadWindow,
    /// Two windows overlap.
    Overlap,
}

/// A VM's guest-physical map.
#[derive(Clone, Copy, Debug)]
pub struct GuestMap {
    gicd: Window,
    gicr: Window,
    ram: [Window; MAX_RAM],
    ram_count: usize,
    devices: [Window; MAX_DEVICES],
    device_count: usize,
}

impl GuestMap {
    /// A map with the GIC distributor and redistributor windows, RAM and device windows
    /// (device `i` is `devices[i]`). No two windows may overlap.
    pub fn new(
        gicd: Window,
        gicr: Window,
        ram: &[Window],
        devices: &[Window],
    ) -> Result<GuestMap, MapError> {
        if ram.len() > MAX_RAM || devices.len() > MAX_DEVICES {
            return Err(MapError::TooMany);
        }
        let all = || {
            [gicd, gicr]
                .into_iter()
                .chain(ram.iter().copied())
                .chain(devices.iter().copied())
        };
        if all().any(|w| !w.valid()) {
            return Err(MapError::BadWindow);
        }
        for (i, a) in all().enumerate() {
            if all().take(i).any(|b| a.overlaps(&b)) {
                return Err(MapError::Overlap);
            }
        }
        let mut m = GuestMap {
            gicd,
            gicr,
            ram: [Window::new(0, 0); MAX_RAM],
            ram_count: ram.len(),
            devices: [Window::new(0, 0); MAX_DEVICES],
            device_count: devices.len(),
        };
        for (slot, w) in m.ram.iter_mut().zip(ram) {
            *slot = *w;
        }
        for (slot, w) in m.devices.iter_mut().zip(devices) {
            *slot = *w;
        }
        Ok(m)
    }

    /// Who handles an access of `len` bytes at `ipa` (`len` 1 for an instruction fetch or an
    /// access of unknown size).
    pub fn route(&self, ipa: u64, len: u64) -> Target {
        if let Some(off) = self.gicd.offset_of(ipa, len) {
            return Target::Gicd(off);
        }
        if let Some(off) = self.gicr.offset_of(ipa, len) {
            return Target::Gicr(off);
        }
        for (i, d) in self.devices.iter().take(self.device_count).enumerate() {
            if let Some(off) = d.offset_of(ipa, len) {
                return Target::Device(i, off);
            }
        }
        if self.ram().iter().any(|r| r.offset_of(ipa, len).is_some()) {
            return Target::Ram;
        }
        Target::Unmapped
    }

    /// The RAM ranges, e.g. for PSCI's CPU_ON entry check.
    pub fn ram(&self) -> &[Window] {
        self.ram.get(..self.ram_count).unwrap_or(&[])
    }
}
