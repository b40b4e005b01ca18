//! The build date for the version line of `srvr`/`stat`/`envi`, in
//! ZooKeeper's form (`built on 2024-02-12 22:16 UTC`), which tools parse.
//! `SOURCE_DATE_EPOCH` (reproducible builds) wins over the clock.

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    println!(
        "cargo:rustc-env=FERROKEEPER_BUILD_DATE={}",
        proto::time::utc_minutes(secs)
    );
}
