//! Runs untrusted WebAssembly plugins: components of the `codexcontinue:plugin` world
//! (`wit/plugin.wit`: `describe` and `invoke`, JSON in and out, no imports at all).
//!
//! Wasmtime with Cranelift and the component model, nothing else: no WASI, no host
//! functions, so a plugin can compute and nothing more. Each call gets a store of its own
//! (no state survives a call) with fuel ([`Limits::fuel`]), a wall-clock deadline (epoch
//! interruption, ticked every [`TICK`] by a thread of the sandbox), and limits on memory,
//! instances and tables. Compiled components are kept per replica by SHA-256
//! ([`Limits::cached_components`]), so a warm call only instantiates.
//!
//! The server keeps this crate apart so that its own builds do not recompile Wasmtime,
//! and names it only in its plugin transport.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap,
    component::{Component, Linker},
};

/// The generated bindings of `wit/plugin.wit`.
mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({ world: "plugin", path: "wit" });
}

use bindings::Plugin;

/// How often the deadline clock ticks.
pub const TICK: Duration = Duration::from_millis(5);

/// What one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions (roughly) one call may run.
    pub fuel: u64,
    /// Linear memory one call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// Compiled components kept per replica.
    pub cached_components: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 500_000_000,
            memory_bytes: 64 * 1024 * 1024,
            max_component_bytes: 8 * 1024 * 1024,
            cached_components: 256,
        }
    }
}

/// Why a component could not be loaded or a call did not finish.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    /// The component is larger than allowed.
    #[error("the component is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a component of the plugin world.
    #[error("not a plugin component: {0}")]
    Invalid(String),
    /// The call ran out of fuel.
    #[error("the plugin ran out of fuel (more than {0} instructions)")]
    OutOfFuel(u64),
    /// The call ran past its deadline.
    #[error("the plugin ran past its deadline of {0} ms")]
    Deadline(u128),
    /// The call wanted more memory than allowed.
    #[error("the plugin wanted more than {0} bytes of memory")]
    Memory(usize),
    /// The plugin trapped.
    #[error("the plugin trapped: {0}")]
    Trap(String),
    /// The sandbox could not be set up.
    #[error("the sandbox could not start: {0}")]
    Setup(String),
}

/// A compiled component, ready to call.
#[derive(Clone)]
pub struct Loaded {
    component: Component,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

struct State {
    limits: StoreLimits,
}

/// The sandbox of a replica; share it.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<State>,
    limits: Limits,
    cache: Mutex<HashMap<[u8; 32], Component>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Sandbox {
    /// A sandbox whose calls stay within `limits`.
    ///
    /// # Errors
    /// [`SandboxError::Setup`] when Wasmtime cannot be configured on this machine.
    pub fn new(limits: Limits) -> Result<Self, SandboxError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|err| SandboxError::Setup(err.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticking = engine.clone();
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("wasm-deadlines".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|err| SandboxError::Setup(err.to_string()))?;
        Ok(Self {
            linker: Linker::new(&engine),
            engine,
            limits,
            cache: Mutex::new(HashMap::new()),
            stop,
        })
    }

    /// Compiles `bytes` (a component, binary or text), or takes it from the cache.
    ///
    /// # Errors
    /// [`SandboxError::TooLarge`], or [`SandboxError::Invalid`] when it is not a
    /// component of the plugin world (imports included: it may import nothing).
    pub fn load(&self, bytes: &[u8]) -> Result<Loaded, SandboxError> {
        if bytes.len() > self.limits.max_component_bytes {
            return Err(SandboxError::TooLarge {
                size: bytes.len(),
                max: self.limits.max_component_bytes,
            });
        }
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(component) = self.lock().get(&sha256) {
            return Ok(Loaded {
                component: component.clone(),
                sha256,
            });
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|err| SandboxError::Invalid(format!("{err:#}")))?;
        // Fails now, not at the first call, when the world does not match.
        self.linker
            .instantiate_pre(&component)
            .map_err(|err| SandboxError::Invalid(format!("{err:#}")))?;
        let mut cache = self.lock();
        if cache.len() >= self.limits.cached_components {
            cache.clear();
        }
        cache.insert(sha256, component.clone());
        Ok(Loaded { component, sha256 })
    }

    /// The component's manifest (JSON text), within `deadline`.
    ///
    /// # Errors
    /// Why the call did not finish.
    pub fn describe(&self, loaded: &Loaded, deadline: Duration) -> Result<String, SandboxError> {
        self.call(loaded, deadline, |plugin, store| {
            plugin.call_describe(store)
        })
    }

    /// Runs `tool` with `arguments` (JSON object text) within `deadline`: the tool's
    /// result (JSON text), or what it said went wrong.
    ///
    /// # Errors
    /// Why the call did not finish (fuel, deadline, memory, a trap).
    pub fn invoke(
        &self,
        loaded: &Loaded,
        tool: &str,
        arguments: &str,
        deadline: Duration,
    ) -> Result<Result<String, String>, SandboxError> {
        self.call(loaded, deadline, |plugin, store| {
            plugin.call_invoke(store, tool, arguments)
        })
    }

    /// Instantiates `loaded` in a store of its own under the limits and runs `body`.
    fn call<T>(
        &self,
        loaded: &Loaded,
        deadline: Duration,
        body: impl FnOnce(&Plugin, &mut Store<State>) -> wasmtime::Result<T>,
    ) -> Result<T, SandboxError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(4)
            // One linear memory: `memory_bytes` is then what a call may take in all.
            .memories(1)
            .tables(16)
            .table_elements(100_000)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, State { limits });
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|err| SandboxError::Setup(err.to_string()))?;
        let ticks = deadline.as_nanos().div_ceil(TICK.as_nanos()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        let outcome = Plugin::instantiate(&mut store, &loaded.component, &self.linker)
            .and_then(|plugin| body(&plugin, &mut store));
        outcome.map_err(|err| self.classify(&err, deadline))
    }

    /// What a failed call came to.
    fn classify(&self, err: &wasmtime::Error, deadline: Duration) -> SandboxError {
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => SandboxError::OutOfFuel(self.limits.fuel),
            Some(Trap::Interrupt) => SandboxError::Deadline(deadline.as_millis()),
            _ if format!("{err:#}").contains("forcing trap when growing memory") => {
                SandboxError::Memory(self.limits.memory_bytes)
            }
            _ => SandboxError::Trap(format!("{err:#}")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Component>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT_STATS: &str = include_str!("../plugins/text_stats.wat");
    const SECOND: Duration = Duration::from_secs(1);

    /// A component of the plugin world whose `invoke` runs `body` (a core function body
    /// returning the result's address).
    fn component_invoking(body: &str) -> String {
        format!(
            r#"(component
                (core module $m
                  (memory (export "memory") 1)
                  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
                  (func (export "describe") (result i32)
                    (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 2))
                    (i32.const 0))
                  (data (i32.const 64) "{{}}")
                  (func (export "invoke") (param i32 i32 i32 i32) (result i32) {body}))
                (core instance $i (instantiate $m))
                (func (export "describe") (result string)
                  (canon lift (core func $i "describe") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc"))))
                (func (export "invoke") (param "tool" string) (param "arguments" string)
                  (result (result string (error string)))
                  (canon lift (core func $i "invoke") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc")))))"#
        )
    }

    #[test]
    fn the_shipped_text_stats_plugin_counts_exactly() {
        let sandbox = Sandbox::new(Limits::default()).expect("sandbox");
        let loaded = sandbox.load(TEXT_STATS.as_bytes()).expect("loads");
        let manifest = sandbox.describe(&loaded, SECOND).expect("describes");
        assert!(manifest.contains(r#""name":"count""#), "{manifest}");
        assert!(manifest.ends_with("[]}"), "the whole manifest: {manifest}");
        for (arguments, expected) in [
            (
                r#"{"text": "two  words"}"#,
                r#"{"characters":10,"words":2,"lines":1}"#,
            ),
            (
                r#"{"text":"a\nb c\n"}"#,
                r#"{"characters":6,"words":3,"lines":3}"#,
            ),
            (
                r#"{"text":"é😀 \"q\""}"#,
                r#"{"characters":6,"words":2,"lines":1}"#,
            ),
            (
                r#"{"text":"\ud83d\ude00!"}"#,
                r#"{"characters":2,"words":1,"lines":1}"#,
            ),
            (r#"{"text":""}"#, r#"{"characters":0,"words":0,"lines":0}"#),
        ] {
            let answer = sandbox
                .invoke(&loaded, "count", arguments, SECOND)
                .expect("runs");
            assert_eq!(answer.as_deref(), Ok(expected), "{arguments}");
        }
        let refused = sandbox
            .invoke(&loaded, "count", r#"{"words":1}"#, SECOND)
            .expect("runs");
        assert!(refused.is_err_and(|e| e.contains("text")));
        let unknown = sandbox
            .invoke(&loaded, "other", "{}", SECOND)
            .expect("runs");
        assert!(unknown.is_err_and(|e| e.contains("count")));
    }

    #[test]
    fn runaway_loops_stop_by_fuel_and_by_deadline() {
        let spin = component_invoking("(loop $l (br $l)) (i32.const 0)");
        let fuelled = Sandbox::new(Limits {
            fuel: 1_000_000,
            ..Limits::default()
        })
        .expect("sandbox");
        let loaded = fuelled.load(spin.as_bytes()).expect("loads");
        assert_eq!(
            fuelled.invoke(&loaded, "x", "{}", Duration::from_secs(30)),
            Err(SandboxError::OutOfFuel(1_000_000))
        );
        let timed = Sandbox::new(Limits {
            fuel: u64::MAX,
            ..Limits::default()
        })
        .expect("sandbox");
        let loaded = timed.load(spin.as_bytes()).expect("loads");
        let started = std::time::Instant::now();
        assert_eq!(
            timed.invoke(&loaded, "x", "{}", Duration::from_millis(50)),
            Err(SandboxError::Deadline(50))
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        // The sandbox is unharmed: the next call works.
        let stats = timed.load(TEXT_STATS.as_bytes()).expect("loads");
        assert!(
            timed
                .invoke(&stats, "count", r#"{"text":"a"}"#, SECOND)
                .is_ok()
        );
    }

    #[test]
    fn memory_growth_is_stopped_at_the_limit_and_traps_are_reported() {
        let sandbox = Sandbox::new(Limits {
            memory_bytes: 2 * 1024 * 1024,
            ..Limits::default()
        })
        .expect("sandbox");
        let greedy = component_invoking(
            "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (i32.const 0)",
        );
        let loaded = sandbox.load(greedy.as_bytes()).expect("loads");
        assert_eq!(
            sandbox.invoke(&loaded, "x", "{}", SECOND),
            Err(SandboxError::Memory(2 * 1024 * 1024))
        );
        let trapping = component_invoking("unreachable");
        let loaded = sandbox.load(trapping.as_bytes()).expect("loads");
        assert!(matches!(
            sandbox.invoke(&loaded, "x", "{}", SECOND),
            Err(SandboxError::Trap(_))
        ));
    }

    #[test]
    fn components_that_import_anything_or_are_too_large_are_refused() {
        let sandbox = Sandbox::new(Limits {
            max_component_bytes: 64 * 1024,
            ..Limits::default()
        })
        .expect("sandbox");
        let importing = r#"(component
            (import "host" (func $h))
            (core func $l (canon lower (func $h)))
        )"#;
        assert!(matches!(
            sandbox.load(importing.as_bytes()),
            Err(SandboxError::Invalid(_))
        ));
        let huge = vec![0u8; 64 * 1024 + 1];
        assert!(matches!(
            sandbox.load(&huge),
            Err(SandboxError::TooLarge { .. })
        ));
        assert!(matches!(
            sandbox.load(b"\0asm not really"),
            Err(SandboxError::Invalid(_))
        ));
    }
}
