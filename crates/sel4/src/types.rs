//! Plain values passed to and from invocations.

use core::ops::{BitOr, BitOrAssign};

use sel4_sys::{consts, object_type, rights, user_context, vm_attr, MessageInfo, Word};

/// A badge: the word a receiver sees in x0 (or a notification's accumulated bits). 0 = none.
pub type Badge = Word;

/// `seL4_CapRights_t`: bit 0 Write, bit 1 Read, bit 2 Grant, bit 3 GrantReply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CapRights {
    pub grant_reply: bool,
    pub grant: bool,
    pub read: bool,
    pub write: bool,
}

impl CapRights {
    /// Same argument order as `seL4_CapRights_new(grant_reply, grant, read, write)`.
    pub const fn new(grant_reply: bool, grant: bool, read: bool, write: bool) -> Self {
        CapRights {
            grant_reply,
            grant,
            read,
            write,
        }
    }

    /// `seL4_NoRights`.
    pub const fn none() -> Self {
        Self::new(false, false, false, false)
    }

    /// `seL4_CanRead`.
    pub const fn read_only() -> Self {
        Self::new(false, false, true, false)
    }

    /// `seL4_CanWrite`.
    pub const fn write_only() -> Self {
        Self::new(false, false, false, true)
    }

    /// `seL4_ReadWrite`.
    pub const fn read_write() -> Self {
        Self::new(false, false, true, true)
    }

    /// `seL4_AllRights`.
    pub const fn all() -> Self {
        Self::new(true, true, true, true)
    }

    /// The rights word as the kernel reads it.
    pub const fn into_word(self) -> Word {
        (if self.write { rights::WRITE } else { 0 })
            | (if self.read { rights::READ } else { 0 })
            | (if self.grant { rights::GRANT } else { 0 })
            | (if self.grant_reply {
                rights::GRANT_REPLY
            } else {
                0
            })
    }

    /// Decode a rights word (bits above 3 are ignored, as the kernel does).
    pub const fn from_word(w: Word) -> Self {
        CapRights {
            write: w & rights::WRITE != 0,
            read: w & rights::READ != 0,
            grant: w & rights::GRANT != 0,
            grant_reply: w & rights::GRANT_REPLY != 0,
        }
    }
}

/// `seL4_ARM_VMAttributes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmAttributes(pub Word);

impl VmAttributes {
    pub const NONE: Self = VmAttributes(0);
    pub const PAGE_CACHEABLE: Self = VmAttributes(vm_attr::PAGE_CACHEABLE);
    pub const PARITY_ENABLED: Self = VmAttributes(vm_attr::PARITY_ENABLED);
    pub const EXECUTE_NEVER: Self = VmAttributes(vm_attr::EXECUTE_NEVER);
    /// `seL4_ARM_Default_VMAttributes` (cacheable, parity enabled).
    pub const DEFAULT: Self = VmAttributes(vm_attr::DEFAULT);

    pub const fn into_word(self) -> Word {
        self.0
    }
}

impl Default for VmAttributes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl BitOr for VmAttributes {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        VmAttributes(self.0 | rhs.0)
    }
}

impl BitOrAssign for VmAttributes {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Object types for `Untyped::retype` (MCS, aarch64, hyp numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    Untyped,
    Tcb,
    Endpoint,
    Notification,
    /// A CNode; `size_bits` of retype is the log2 of the number of slots.
    CNode,
    /// `size_bits` of retype is the log2 of the size in bytes (≥ 7).
    SchedContext,
    Reply,
    HugePage,
    VSpace,
    SmallPage,
    LargePage,
    PageTable,
    VCpu,
}

impl ObjectType {
    /// The number passed in MR0 of `Untyped_Retype`.
    pub const fn into_word(self) -> Word {
        match self {
            ObjectType::Untyped => object_type::UNTYPED,
            ObjectType::Tcb => object_type::TCB,
            ObjectType::Endpoint => object_type::ENDPOINT,
            ObjectType::Notification => object_type::NOTIFICATION,
            ObjectType::CNode => object_type::CAP_TABLE,
            ObjectType::SchedContext => object_type::SCHED_CONTEXT,
            ObjectType::Reply => object_type::REPLY,
            ObjectType::HugePage => object_type::ARM_HUGE_PAGE,
            ObjectType::VSpace => object_type::ARM_VSPACE,
            ObjectType::SmallPage => object_type::ARM_SMALL_PAGE,
            ObjectType::LargePage => object_type::ARM_LARGE_PAGE,
            ObjectType::PageTable => object_type::ARM_PAGE_TABLE,
            ObjectType::VCpu => object_type::ARM_VCPU,
        }
    }

    /// Decode an object-type number.
    pub const fn from_word(w: Word) -> Option<Self> {
        Some(match w {
            object_type::UNTYPED => ObjectType::Untyped,
            object_type::TCB => ObjectType::Tcb,
            object_type::ENDPOINT => ObjectType::Endpoint,
            object_type::NOTIFICATION => ObjectType::Notification,
            object_type::CAP_TABLE => ObjectType::CNode,
            object_type::SCHED_CONTEXT => ObjectType::SchedContext,
            object_type::REPLY => ObjectType::Reply,
            object_type::ARM_HUGE_PAGE => ObjectType::HugePage,
            object_type::ARM_VSPACE => ObjectType::VSpace,
            object_type::ARM_SMALL_PAGE => ObjectType::SmallPage,
            object_type::ARM_LARGE_PAGE => ObjectType::LargePage,
            object_type::ARM_PAGE_TABLE => ObjectType::PageTable,
            object_type::ARM_VCPU => ObjectType::VCpu,
            _ => return None,
        })
    }

    /// Size in bits of one object, for fixed-size types; `None` for Untyped, CNode and
    /// SchedContext, whose size comes from `size_bits`.
    pub const fn fixed_size_bits(self) -> Option<u64> {
        Some(match self {
            ObjectType::Tcb => consts::TCB_BITS,
            ObjectType::Endpoint => consts::ENDPOINT_BITS,
            ObjectType::Notification => consts::NOTIFICATION_BITS,
            ObjectType::Reply => consts::REPLY_BITS,
            ObjectType::HugePage => consts::HUGE_PAGE_BITS,
            ObjectType::VSpace => consts::VSPACE_BITS,
            ObjectType::SmallPage => consts::PAGE_BITS,
            ObjectType::LargePage => consts::LARGE_PAGE_BITS,
            ObjectType::PageTable => consts::PAGE_TABLE_BITS,
            ObjectType::VCpu => consts::VCPU_BITS,
            ObjectType::Untyped | ObjectType::CNode | ObjectType::SchedContext => return None,
        })
    }
}

/// `seL4_CNode_CapData`: the data word for minting/mutating a CNode cap (guard size in bits
/// 0–5, guard in bits 6–63).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CNodeCapData {
    pub guard: Word,
    pub guard_size: Word,
}

impl CNodeCapData {
    pub const fn new(guard: Word, guard_size: Word) -> Self {
        CNodeCapData { guard, guard_size }
    }

    /// A guard of `guard_size` zero bits.
    pub const fn skip(guard_size: Word) -> Self {
        Self::new(0, guard_size)
    }

    pub const fn into_word(self) -> Word {
        (self.guard << 6) | (self.guard_size & 0x3f)
    }

    pub const fn from_word(w: Word) -> Self {
        Self::new(w >> 6, w & 0x3f)
    }
}

/// IRQ trigger mode for `IrqControl::get_trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IrqTrigger {
    Level = 0,
    Edge = 1,
}

/// Builder for [`MessageInfo`]: `MessageInfoBuilder::new().label(5).length(2).build()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageInfoBuilder {
    label: Word,
    caps_unwrapped: Word,
    extra_caps: Word,
    length: Word,
}

impl MessageInfoBuilder {
    pub const fn new() -> Self {
        MessageInfoBuilder {
            label: 0,
            caps_unwrapped: 0,
            extra_caps: 0,
            length: 0,
        }
    }
    /// The label (52 bits).
    pub const fn label(mut self, label: Word) -> Self {
        self.label = label;
        self
    }
    /// Bitmask of unwrapped extra caps (receiver side; 3 bits).
    pub const fn caps_unwrapped(mut self, mask: Word) -> Self {
        self.caps_unwrapped = mask;
        self
    }
    /// Number of extra caps (0..=3).
    pub const fn extra_caps(mut self, n: Word) -> Self {
        self.extra_caps = n;
        self
    }
    /// Number of message registers (0..=120).
    pub const fn length(mut self, n: Word) -> Self {
        self.length = n;
        self
    }
    /// Pack the message-info word. Panics (at compile time in const contexts) if a field
    /// does not fit.
    pub const fn build(self) -> MessageInfo {
        assert!(self.label < (1 << 52), "message label wider than 52 bits");
        assert!(self.caps_unwrapped < 8, "caps_unwrapped wider than 3 bits");
        assert!(
            self.extra_caps <= consts::MSG_MAX_EXTRA_CAPS as Word,
            "too many extra caps"
        );
        assert!(
            self.length <= consts::MSG_MAX_LENGTH as Word,
            "message longer than 120 words"
        );
        MessageInfo::new(
            self.label,
            self.caps_unwrapped,
            self.extra_caps,
            self.length,
        )
    }
}

/// `seL4_UserContext` for aarch64: 36 words in seL4's order (pc, sp, spsr, x0–x8, x16, x17,
/// x18, x29, x30, x9–x15, x19–x28, tpidr_el0, tpidrro_el0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserContext {
    words: [Word; consts::USER_CONTEXT_WORDS],
}

impl Default for UserContext {
    fn default() -> Self {
        UserContext {
            words: [0; consts::USER_CONTEXT_WORDS],
        }
    }
}

impl UserContext {
    /// From words in seL4 order.
    pub const fn from_words(words: [Word; consts::USER_CONTEXT_WORDS]) -> Self {
        UserContext { words }
    }
    /// The words in seL4 order (the order of MRs in Read/WriteRegisters).
    pub const fn words(&self) -> &[Word; consts::USER_CONTEXT_WORDS] {
        &self.words
    }
    /// Index of general-purpose register `xn` in seL4 order; `None` unless n is in 0..=30.
    pub const fn gpr_index(n: usize) -> Option<usize> {
        match n {
            0..=8 => Some(user_context::X0 + n),
            9..=15 => Some(user_context::X9 + (n - 9)),
            16..=18 => Some(user_context::X16 + (n - 16)),
            19..=28 => Some(user_context::X19 + (n - 19)),
            29 => Some(user_context::X29),
            30 => Some(user_context::X30),
            _ => None,
        }
    }
    pub const fn pc(&self) -> Word {
        self.words[user_context::PC]
    }
    pub fn set_pc(&mut self, v: Word) {
        self.words[user_context::PC] = v;
    }
    pub const fn sp(&self) -> Word {
        self.words[user_context::SP]
    }
    pub fn set_sp(&mut self, v: Word) {
        self.words[user_context::SP] = v;
    }
    pub const fn spsr(&self) -> Word {
        self.words[user_context::SPSR]
    }
    pub fn set_spsr(&mut self, v: Word) {
        self.words[user_context::SPSR] = v;
    }
    /// Register `xn`; `None` unless n is in 0..=30.
    pub fn gpr(&self, n: usize) -> Option<Word> {
        Self::gpr_index(n).and_then(|i| self.words.get(i).copied())
    }
    /// Set register `xn`. Returns false, and writes nothing, unless n is in 0..=30.
    pub fn set_gpr(&mut self, n: usize, v: Word) -> bool {
        match Self::gpr_index(n).and_then(|i| self.words.get_mut(i)) {
            Some(w) => {
                *w = v;
                true
            }
            None => false,
        }
    }
    pub const fn tpidr_el0(&self) -> Word {
        self.words[user_context::TPIDR_EL0]
    }
    pub fn set_tpidr_el0(&mut self, v: Word) {
        self.words[user_context::TPIDR_EL0] = v;
    }
    pub const fn tpidrro_el0(&self) -> Word {
        self.words[user_context::TPIDRRO_EL0]
    }
    pub fn set_tpidrro_el0(&mut self, v: Word) {
        self.words[user_context::TPIDRRO_EL0] = v;
    }
}

/// `seL4_ARM_SMCContext`: x0..x7 of a Secure Monitor Call, in and out.
pub type SmcContext = [Word; 8];
