//! Generated constants and link script: see `keel_component::build`.
fn main() {
    keel_component::build::component();
}
