//! End-to-end tests of the real `hms-ach` binary over real sockets. Each test says
//! which independent peer it uses. The binary comes from `HMS_ACH_BIN` or the
//! workspace's `target/debug/hms-ach` (`scripts/test.sh` builds it first).

use std::path::PathBuf;

pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("HMS_ACH_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/hms-ach");
    assert!(
        p.exists(),
        "build the binary first: cargo build -p hms-ach (or set HMS_ACH_BIN)"
    );
    p
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_181)
}
