//! The README's Rust quick start: screening commands with the WAF.

use hotplex_core::waf::{Detector, Level};

fn main() {
    let d = Detector::new();
    let v = d.check_command("rm -rf /");
    assert!(v.blocked && v.level == Level::Critical);
    assert!(d.check_command("ls -la").is_safe());
    println!("{} {}", v.level.as_str(), v.reason);
}
