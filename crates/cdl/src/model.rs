//! The validated system: what a `system.cdl` that passed every rule describes, with the
//! supervisor, the console and their channels, region and interrupt already added.

pub use keel_spec::RestartPolicy;

/// What a component is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Declared with `component`.
    User,
    /// Declared with `supervisor`: fault handler of every other component.
    Supervisor,
    /// Declared with `console`: owns the UART, serves every other component's log calls.
    Console,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    /// The cargo package that builds the component's program.
    pub program: String,
    pub role: Role,
    pub priority: u8,
    pub budget_us: u64,
    pub period_us: u64,
    pub passive: bool,
    pub stack_size: u64,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub restart: RestartPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub size: u64,
    /// 4096 or 2097152.
    pub page_size: u64,
    /// Set for device regions.
    pub phys_addr: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// Index into [`crate::System::regions`].
    pub region: usize,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irq {
    pub number: u32,
    /// The channel id it arrives on.
    pub id: u8,
    pub edge: bool,
    /// The generated constant's name (before SCREAMING_SNAKE): the `name` property, or
    /// `irq_<number>`.
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// Index into [`crate::System::components`].
    pub component: usize,
    pub id: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: Option<String>,
    pub ends: [End; 2],
    /// 0 or 1: the end that makes protected calls to the other.
    pub caller: Option<u8>,
}

impl Channel {
    /// The end at `component`, and the other end, if the channel touches it.
    pub fn end_at(&self, component: usize) -> Option<(End, End, bool)> {
        let [a, b] = self.ends;
        if a.component == component {
            Some((a, b, self.caller == Some(0)))
        } else if b.component == component {
            Some((b, a, self.caller == Some(1)))
        } else {
            None
        }
    }
}
