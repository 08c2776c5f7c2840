//! `cargo run -p cdl --example cdl-check -- FILE [COMPONENT]`: check a system.cdl and print
//! its report, or its spec and one component's generated constants.
fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: cdl-check FILE [COMPONENT]");
        std::process::exit(2);
    };
    match cdl::load(&path) {
        Ok(system) => {
            println!("{:#?}", system.lower());
            if let Some(name) = args.next() {
                match system.index_of(&name) {
                    Some(i) => print!("{}", system.generate(i)),
                    None => eprintln!("no component {name}"),
                }
            }
        }
        Err(report) => {
            #[cfg(feature = "fancy")]
            eprint!("{}", report.render(false));
            #[cfg(not(feature = "fancy"))]
            eprint!("{}", report.plain());
            std::process::exit(1);
        }
    }
}
