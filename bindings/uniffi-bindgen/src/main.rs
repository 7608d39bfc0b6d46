//! `cargo run -p uniffi-bindgen -- generate --library target/.../libsyncvault.so ...`
//! Lives in its own crate so the mobile library never depends on the CLI.

fn main() {
    uniffi::uniffi_bindgen_main()
}
