#![cfg_attr(target_os = "none", no_std, no_main)]
#[cfg(target_os = "none")]
mod guest {
    fn main(_env: &test_guests::rt::Env) -> Result<(), test_guests::rt::Fail> { Err(test_guests::rt::Fail::new("todo")) }
    test_guests::guest!("outside_ram", main);
}
#[cfg(not(target_os = "none"))]
fn main() {}
