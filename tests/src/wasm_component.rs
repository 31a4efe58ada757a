//! WebAssembly components of the plugin world, written in the component text format, for
//! tests and benchmarks.

/// A component with one tool, `tool`, whose `invoke` runs `body` (a core function body
/// that leaves the address of the result: case at 16, string pointer and length at 20 and
/// 24). `variant` only changes its bytes (a comment), so each variant is compiled anew.
pub fn component(tool: &str, body: &str, variant: usize) -> Vec<u8> {
    let manifest = format!(r#"{{"name":"t","tools":[{{"name":"{tool}"}}]}}"#);
    let escaped = manifest.replace('"', "\\\"");
    let length = manifest.len();
    format!(
        r#"(component
            ;; variant {variant}
            (core module $m
              (memory (export "memory") 1)
              (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
              (data (i32.const 64) "{escaped}")
              (data (i32.const 512) "{{}}")
              (func (export "describe") (result i32)
                (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const {length}))
                (i32.const 0))
              (func (export "invoke") (param i32 i32 i32 i32) (result i32) {body}))
            (core instance $i (instantiate $m))
            (func (export "describe") (result string)
              (canon lift (core func $i "describe") (memory (core memory $i "memory"))
                (realloc (core func $i "cabi_realloc"))))
            (func (export "invoke") (param "tool" string) (param "arguments" string)
              (result (result string (error string)))
              (canon lift (core func $i "invoke") (memory (core memory $i "memory"))
                (realloc (core func $i "cabi_realloc")))))"#
    )
    .into_bytes()
}

/// An `invoke` body answering `{}` (at 512).
pub const ANSWER_EMPTY_OBJECT: &str = "(i32.store8 (i32.const 16) (i32.const 0)) \
    (i32.store (i32.const 20) (i32.const 512)) (i32.store (i32.const 24) (i32.const 2)) \
    (i32.const 16)";
