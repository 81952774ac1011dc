//! How much memory the process may use: the continuous executor's default
//! memory limit when `datafusion.runtime.memory_limit` is not set, so that a
//! state that outgrows the machine is an error naming it rather than an
//! allocation failure that aborts the process.
//!
//! The default is the smallest of, where they apply (read from Linux's
//! `/proc` and `/sys`; elsewhere there is no default and state is unbounded,
//! as in batch):
//! - a third of the address space `ulimit -v` (RLIMIT_AS) leaves the process
//!   when the query opens: thread stacks, the binary and the allocator's
//!   arenas already take much of it, and a growing buffer briefly needs its
//!   old and new copies;
//! - half of the cgroup's memory limit (`memory.max`, or cgroup v1's
//!   `memory.limit_in_bytes`), as a container sets it;
//! - half of the physical memory.
//!
//! The state sizes operators report are estimates, and rows in flight
//! (batches read, results emitted) are not state: the margins leave room
//! for both.

/// What bounds the default limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `ulimit -v`.
    AddressSpace,
    /// The cgroup's memory limit.
    Cgroup,
    /// The machine's memory.
    Physical,
}

/// The continuous executor's default memory limit, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultLimit {
    /// Bytes all continuous state may hold.
    pub bytes: usize,
    /// What bounds it.
    pub bound: Bound,
}

impl DefaultLimit {
    /// Where the limit comes from, for errors (`a third of the address
    /// space ulimit -v leaves the process`).
    pub fn source(&self) -> &'static str {
        match self.bound {
            Bound::AddressSpace => "a third of the address space ulimit -v leaves the process",
            Bound::Cgroup => "half of the cgroup's memory limit",
            Bound::Physical => "half of the physical memory",
        }
    }
}

/// What the system says the process may use, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_AS (`ulimit -v`), if not unlimited.
    pub address_space: Option<u64>,
    /// The address space the process maps now.
    pub mapped: Option<u64>,
    /// The cgroup's memory limit, if any.
    pub cgroup: Option<u64>,
    /// Physical memory.
    pub physical: Option<u64>,
}

impl Limits {
    /// Read them from `/proc` and `/sys` (none where those are absent).
    pub fn read() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let cgroup = read("/sys/fs/cgroup/memory.max")
            .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
            .and_then(|text| cgroup_limit(&text));
        Self {
            address_space: read("/proc/self/limits").and_then(|text| address_space(&text)),
            mapped: read("/proc/self/status").and_then(|text| status_kib(&text, "VmSize:")),
            cgroup,
            physical: read("/proc/meminfo").and_then(|text| status_kib(&text, "MemTotal:")),
        }
    }

    /// The default limit these give, if any does.
    pub fn default_limit(&self) -> Option<DefaultLimit> {
        let address_space = self.address_space.map(|limit| {
            let left = limit.saturating_sub(self.mapped.unwrap_or(0));
            (left / 3, Bound::AddressSpace)
        });
        // A cgroup "limit" at or above the machine's memory bounds nothing
        // (cgroup v1 writes "no limit" as a huge number).
        let cgroup = self
            .cgroup
            .filter(|&c| self.physical.is_none_or(|p| c < p))
            .map(|c| (c / 2, Bound::Cgroup));
        let physical = self.physical.map(|p| (p / 2, Bound::Physical));
        [address_space, cgroup, physical]
            .into_iter()
            .flatten()
            .min_by_key(|(bytes, _)| *bytes)
            .map(|(bytes, bound)| DefaultLimit {
                bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
                bound,
            })
    }
}

/// The soft RLIMIT_AS in `/proc/self/limits` (`Max address space  1024000000
/// unlimited  bytes`); `None` when unlimited.
fn address_space(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A `Name:  123 kB` line of `/proc/self/status` or `/proc/meminfo`, in bytes.
fn status_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A cgroup's memory limit file: a number of bytes, or `max` (none).
fn cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_files_are_read_as_the_kernel_writes_them() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max stack size            8388608              unlimited            bytes     \n\
            Max address space         1024000000           unlimited            bytes     \n";
        assert_eq!(address_space(limits), Some(1_024_000_000));
        assert_eq!(
            address_space("Max address space         unlimited            unlimited            bytes"),
            None
        );
        assert_eq!(
            status_kib("Name:\tsluice\nVmSize:\t  843204 kB\n", "VmSize:"),
            Some(843_204 * 1024)
        );
        assert_eq!(
            status_kib("MemTotal:       24684084 kB\n", "MemTotal:"),
            Some(24_684_084 * 1024)
        );
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("2147483648\n"), Some(2 * GIB));
    }

    #[test]
    fn the_default_is_the_smallest_bound_with_its_margin() {
        let machine = Limits {
            physical: Some(16 * GIB),
            ..Limits::default()
        };
        let limit = machine.default_limit().expect("a limit");
        assert_eq!((limit.bytes as u64, limit.bound), (8 * GIB, Bound::Physical));
        // cgroup v1's "no limit" is a number larger than the machine.
        let unbounded = Limits {
            cgroup: Some(9_223_372_036_854_771_712),
            ..machine
        };
        assert_eq!(unbounded.default_limit(), machine.default_limit());
        let container = Limits {
            cgroup: Some(4 * GIB),
            ..machine
        };
        let limit = container.default_limit().expect("a limit");
        assert_eq!((limit.bytes as u64, limit.bound), (2 * GIB, Bound::Cgroup));
        // ulimit -v 3 GiB with 972 MiB mapped already: a third of the rest.
        let ulimit = Limits {
            address_space: Some(3 * GIB),
            mapped: Some(972 << 20),
            ..container
        };
        let limit = ulimit.default_limit().expect("a limit");
        assert_eq!(
            (limit.bytes as u64, limit.bound),
            (700 << 20, Bound::AddressSpace)
        );
        assert_eq!(
            Limits::default().default_limit(),
            None,
            "nothing known, no default"
        );
    }
}
