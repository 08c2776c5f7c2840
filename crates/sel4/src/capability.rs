//! Typed capability pointers.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use sel4_sys::{init_cap, CPtr};

use crate::ObjectType;

/// The kind of object a [`Cap`] refers to. Implemented by the zero-sized markers in
/// [`cap_type`]; the marker is only a compile-time label, the kernel checks the real type.
pub trait CapType: Copy + 'static {
    /// Human-readable name, for `Debug` output.
    const NAME: &'static str;
}

/// Object types that have a fixed size, so `Untyped::retype` needs no size argument for them.
pub trait FixedSize: CapType {
    /// The object type to pass to `Untyped::retype`.
    const OBJECT_TYPE: ObjectType;
    /// log2 of the object's size in bytes.
    const SIZE_BITS: u64;
}

/// Frame (page) capability types: 4 KiB, 2 MiB and 1 GiB pages.
pub trait FrameType: FixedSize {}

/// A capability pointer (CPtr) in the caller's CSpace, labelled with the type of object it is
/// expected to refer to. Copying a `Cap` copies the pointer, not the capability.
pub struct Cap<T: CapType> {
    cptr: CPtr,
    _type: PhantomData<T>,
}

impl<T: CapType> Cap<T> {
    /// A capability pointer to `cptr` (resolved at depth 64 in the caller's CSpace).
    pub const fn from_cptr(cptr: CPtr) -> Self {
        Cap {
            cptr,
            _type: PhantomData,
        }
    }

    /// The null capability pointer (slot 0).
    pub const fn null() -> Self {
        Self::from_cptr(init_cap::NULL)
    }

    /// The raw CPtr.
    pub const fn cptr(self) -> CPtr {
        self.cptr
    }

    /// Whether this is the null CPtr 0.
    pub const fn is_null(self) -> bool {
        self.cptr == init_cap::NULL
    }

    /// The same CPtr, relabelled as another object type.
    pub const fn cast<U: CapType>(self) -> Cap<U> {
        Cap::from_cptr(self.cptr)
    }

    /// The same CPtr with its type label erased.
    pub const fn upcast(self) -> Cap<cap_type::Unspecified> {
        self.cast()
    }
}

impl<T: CapType> Clone for Cap<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: CapType> Copy for Cap<T> {}

impl<T: CapType> PartialEq for Cap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cptr == other.cptr
    }
}

impl<T: CapType> Eq for Cap<T> {}

impl<T: CapType> Hash for Cap<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cptr.hash(state)
    }
}

impl<T: CapType> fmt::Debug for Cap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cap<{}>({:#x})", T::NAME, self.cptr)
    }
}

impl<T: CapType> From<Cap<T>> for CPtr {
    fn from(cap: Cap<T>) -> CPtr {
        cap.cptr
    }
}

/// Zero-sized markers naming object types.
pub mod cap_type {
    use super::{CapType, FixedSize, FrameType};
    use crate::ObjectType;
    use sel4_sys::consts;

    macro_rules! markers {
        ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
            pub struct $name;
            impl CapType for $name {
                const NAME: &'static str = stringify!($name);
            }
        )*};
    }

    markers! {
        /// Untyped memory.
        Untyped,
        /// Thread control block.
        Tcb,
        /// Synchronous IPC endpoint.
        Endpoint,
        /// Notification (asynchronous signal word).
        Notification,
        /// CNode (capability table).
        CNode,
        /// Scheduling context (MCS).
        SchedContext,
        /// Scheduling control: one per core (MCS).
        SchedControl,
        /// Reply object (MCS).
        Reply,
        /// Top-level translation table (a stage-2 table in hyp mode).
        VSpace,
        /// Lower-level translation table.
        PageTable,
        /// 4 KiB frame.
        SmallPage,
        /// 2 MiB frame.
        LargePage,
        /// 1 GiB frame.
        HugePage,
        /// ASID control (initial slot 5).
        AsidControl,
        /// ASID pool.
        AsidPool,
        /// IRQ control (initial slot 4).
        IrqControl,
        /// IRQ handler for one interrupt line.
        IrqHandler,
        /// Permission to make Secure Monitor Calls (initial slot 15).
        Smc,
        /// Virtual CPU (hyp mode).
        VCpu,
        /// The null capability.
        Null,
        /// A capability of unknown or several possible types.
        Unspecified,
    }

    macro_rules! fixed {
        ($($name:ident => $ty:ident, $bits:expr;)*) => {$(
            impl FixedSize for $name {
                const OBJECT_TYPE: ObjectType = ObjectType::$ty;
                const SIZE_BITS: u64 = $bits;
            }
        )*};
    }

    fixed! {
        Tcb => Tcb, consts::TCB_BITS;
        Endpoint => Endpoint, consts::ENDPOINT_BITS;
        Notification => Notification, consts::NOTIFICATION_BITS;
        Reply => Reply, consts::REPLY_BITS;
        VSpace => VSpace, consts::VSPACE_BITS;
        PageTable => PageTable, consts::PAGE_TABLE_BITS;
        SmallPage => SmallPage, consts::PAGE_BITS;
        LargePage => LargePage, consts::LARGE_PAGE_BITS;
        HugePage => HugePage, consts::HUGE_PAGE_BITS;
        VCpu => VCpu, consts::VCPU_BITS;
    }

    impl FrameType for SmallPage {}
    impl FrameType for LargePage {}
    impl FrameType for HugePage {}
}

/// `Cap<marker>` aliases: `sel4::cap::Endpoint` is `Cap<cap_type::Endpoint>`.
pub mod cap {
    use super::{cap_type, Cap};

    pub type Untyped = Cap<cap_type::Untyped>;
    pub type Tcb = Cap<cap_type::Tcb>;
    pub type Endpoint = Cap<cap_type::Endpoint>;
    pub type Notification = Cap<cap_type::Notification>;
    pub type CNode = Cap<cap_type::CNode>;
    pub type SchedContext = Cap<cap_type::SchedContext>;
    pub type SchedControl = Cap<cap_type::SchedControl>;
    pub type Reply = Cap<cap_type::Reply>;
    pub type VSpace = Cap<cap_type::VSpace>;
    pub type PageTable = Cap<cap_type::PageTable>;
    pub type SmallPage = Cap<cap_type::SmallPage>;
    pub type LargePage = Cap<cap_type::LargePage>;
    pub type HugePage = Cap<cap_type::HugePage>;
    pub type AsidControl = Cap<cap_type::AsidControl>;
    pub type AsidPool = Cap<cap_type::AsidPool>;
    pub type IrqControl = Cap<cap_type::IrqControl>;
    pub type IrqHandler = Cap<cap_type::IrqHandler>;
    pub type Smc = Cap<cap_type::Smc>;
    pub type VCpu = Cap<cap_type::VCpu>;
    pub type Null = Cap<cap_type::Null>;
    pub type Unspecified = Cap<cap_type::Unspecified>;
}

/// The root task's initial capabilities (seL4 initial CNode slots).
pub mod init_thread {
    use super::{cap, Cap};
    use sel4_sys::init_cap;

    pub const TCB: cap::Tcb = Cap::from_cptr(init_cap::INIT_THREAD_TCB);
    pub const CNODE: cap::CNode = Cap::from_cptr(init_cap::INIT_THREAD_CNODE);
    pub const VSPACE: cap::VSpace = Cap::from_cptr(init_cap::INIT_THREAD_VSPACE);
    pub const IRQ_CONTROL: cap::IrqControl = Cap::from_cptr(init_cap::IRQ_CONTROL);
    pub const ASID_CONTROL: cap::AsidControl = Cap::from_cptr(init_cap::ASID_CONTROL);
    pub const ASID_POOL: cap::AsidPool = Cap::from_cptr(init_cap::INIT_THREAD_ASID_POOL);
    pub const BOOT_INFO_FRAME: cap::SmallPage = Cap::from_cptr(init_cap::BOOT_INFO_FRAME);
    pub const IPC_BUFFER: cap::SmallPage = Cap::from_cptr(init_cap::INIT_THREAD_IPC_BUFFER);
    pub const SCHED_CONTEXT: cap::SchedContext = Cap::from_cptr(init_cap::INIT_THREAD_SC);
    pub const SMC: cap::Smc = Cap::from_cptr(init_cap::SMC);
}
