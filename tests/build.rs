//! The test binaries link the server library and with it libtorch: record where libtorch
//! lives (`LIBTORCH`, see `.cargo/config.toml`) as their run path, as the server's own
//! build script does for the server binary.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(lib) = std::env::var_os("LIBTORCH")
        .map(|dir| std::path::PathBuf::from(dir).join("lib"))
        .and_then(|lib| std::fs::canonicalize(lib).ok())
    {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
