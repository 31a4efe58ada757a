//! The edge of the server: what every call passes before any handler sees it.
//!
//! [`CheckedCodec`] decodes every request of the public API and refuses, as
//! `INVALID_ARGUMENT` naming the field, what no handler should have to think about: NUL and
//! control characters, strings and lists longer than any field needs, nesting deeper than
//! any message has, and bytes that are not protobuf. The rules live in [`request_fields`],
//! read from the API's own descriptors, so a field added to `proto/` is covered the day it
//! is added.

mod codec;
pub mod request_fields;

pub use codec::CheckedCodec;
