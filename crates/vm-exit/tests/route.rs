//! The guest-physical map: every window routes to its handler with the right offset, accesses
//! that straddle a window's end or miss every window are unmapped, bad maps are refused, and
//! random lookups never panic.

use vm_exit::route::*;

// QEMU virt's layout, as a Keel VM presents it.
const GICD: Window = Window::new(0x0800_0000, 0x1_0000);
const GICR: Window = Window::new(0x080a_0000, 0x4_0000);
const RAM: Window = Window::new(0x4000_0000, 0x1000_0000);
const UART: Window = Window::new(0x0900_0000, 0x1000);
const VIRTIO: Window = Window::new(0x0a00_0000, 0x200);

fn map() -> GuestMap {
    GuestMap::new(GICD, GICR, &[RAM], &[UART, VIRTIO]).unwrap()
}

#[test]
fn windows_route_to_their_handlers() {
    let m = map();
    assert_eq!(m.route(0x0800_0000, 4), Target::Gicd(0));
    assert_eq!(m.route(0x0800_ffe8, 4), Target::Gicd(0xffe8));
    assert_eq!(m.route(0x080a_0008, 8), Target::Gicr(8));
    assert_eq!(m.route(0x080c_0014, 4), Target::Gicr(0x2_0014));
    assert_eq!(m.route(0x0900_0018, 4), Target::Device(0, 0x18));
    assert_eq!(m.route(0x0a00_01fc, 4), Target::Device(1, 0x1fc));
    assert_eq!(m.route(0x4000_0000, 8), Target::Ram);
    assert_eq!(m.ram(), &[RAM]);
}

#[test]
fn misses_and_straddles_are_unmapped() {
    let m = map();
    assert_eq!(m.route(0, 4), Target::Unmapped);
    assert_eq!(m.route(0x0a00_0200, 4), Target::Unmapped);
    // An 8-byte access at the last word of a window crosses its end.
    assert_eq!(m.route(0x0a00_01fc, 8), Target::Unmapped);
    assert_eq!(m.route(0x5000_0000, 1), Target::Unmapped);
    assert_eq!(m.route(u64::MAX, 8), Target::Unmapped);
    assert_eq!(m.route(0x0800_0000, 0), Target::Unmapped);
}

#[test]
fn bad_maps_are_refused() {
    assert_eq!(
        GuestMap::new(GICD, GICR, &[RAM], &[Window::new(0x4000_1000, 0x1000)]).unwrap_err(),
        MapError::Overlap
    );
    assert_eq!(
        GuestMap::new(GICD, GICD, &[RAM], &[]).unwrap_err(),
        MapError::Overlap
    );
    assert_eq!(
        GuestMap::new(GICD, GICR, &[Window::new(u64::MAX - 10, 0x100)], &[]).unwrap_err(),
        MapError::BadWindow
    );
    assert_eq!(
        GuestMap::new(GICD, GICR, &[Window::new(0, 0)], &[]).unwrap_err(),
        MapError::BadWindow
    );
    assert_eq!(
        GuestMap::new(GICD, GICR, &[RAM; 5], &[]).unwrap_err(),
        MapError::TooMany
    );
    let many = [UART; 17];
    assert_eq!(
        GuestMap::new(GICD, GICR, &[], &many).unwrap_err(),
        MapError::TooMany
    );
}

#[test]
fn random_lookups_never_panic() {
    let m = map();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..100_000 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // Half the lookups near the windows.
        let ipa = if r & 1 == 0 {
            r
        } else {
            0x0800_0000 + (r >> 40)
        };
        let len = 1 << ((r >> 8) & 3);
        match m.route(ipa, len) {
            Target::Gicd(o) => assert!(o + len <= GICD.size),
            Target::Gicr(o) => assert!(o + len <= GICR.size),
            Target::Device(i, o) => assert!(i < 2 && o + len <= [UART, VIRTIO][i].size),
            Target::Ram | Target::Unmapped => {}
        }
    }
}
