//! The ICH_LR<n>_EL2 list-register layout (GICv3, IHI 0069 §12.4): what the vCPU manager hands
//! to the kernel's VCPU InjectIRQ.

/// State field of a list register (bits [63:62]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    Invalid = 0,
    Pending = 1,
    Active = 2,
    PendingActive = 3,
}

/// One list register value in the ICH_LR<n>_EL2 layout:
/// vINTID [31:0], pINTID [44:32] (with HW = 0: bit 41 = EOI, a maintenance interrupt when the
/// guest deactivates it), Priority [55:48], Group [60], HW [61], State [63:62].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRegister(pub u64);

const EOI: u64 = 1 << 41;
const GROUP: u64 = 1 << 60;
const HW: u64 = 1 << 61;

impl ListRegister {
    /// A pending, software (HW = 0) interrupt that asks for a maintenance interrupt on EOI, as
    /// seL4's InjectIRQ writes them.
    pub const fn pending(vintid: u32, priority: u8, group1: bool) -> ListRegister {
        let mut v =
            vintid as u64 | EOI | ((priority as u64) << 48) | ((LrState::Pending as u64) << 62);
        if group1 {
            v |= GROUP;
        }
        ListRegister(v)
    }

    pub const fn vintid(self) -> u32 {
        self.0 as u32
    }

    /// pINTID (meaningful with HW = 1).
    pub const fn pintid(self) -> u32 {
        ((self.0 >> 32) & 0x1fff) as u32
    }

    pub const fn priority(self) -> u8 {
        (self.0 >> 48) as u8
    }

    /// Group 1 (else Group 0).
    pub const fn group1(self) -> bool {
        self.0 & GROUP != 0
    }

    pub const fn hw(self) -> bool {
        self.0 & HW != 0
    }

    /// With HW = 0: a maintenance interrupt is raised when the guest EOIs it.
    pub const fn eoi_maintenance(self) -> bool {
        !self.hw() && self.0 & EOI != 0
    }

    pub const fn state(self) -> LrState {
        match self.0 >> 62 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }

    /// The single message word of seL4's `seL4_ARM_VCPU_InjectIRQ(vcpu, virq, priority,
    /// group, index)`: virq [15:0], priority [23:16], group [31:24], index [39:32]. seL4
    /// accepts priorities 0..=31, so the priority passed is the top five bits of the guest's
    /// 8-bit priority (the bits a 5-bit virtual CPU interface implements).
    pub const fn sel4_inject_irq_word(self, index: u8) -> u64 {
        (self.vintid() as u64 & 0xffff)
            | (((self.priority() >> 3) as u64) << 16)
            | ((self.group1() as u64) << 24)
            | ((index as u64) << 32)
    }
}
