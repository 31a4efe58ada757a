//! Test harness: see e2e/.
