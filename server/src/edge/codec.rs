//! The codec of the public API's generated services: prost, with every request checked
//! by [`super::request_fields`] before it is decoded.

use std::marker::PhantomData;

use prost::{Message, Name, bytes::Buf};
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

use super::request_fields::{self, FieldViolation};

/// Encodes `T` and decodes `U` with prost; a decoded request (a message whose name ends in
/// `Request`) is first checked field by field. Responses decoded by clients are not.
#[derive(Debug, Clone)]
pub struct CheckedCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for CheckedCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for CheckedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CheckedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder { _type: PhantomData }
    }
}

/// Checks, then decodes, one message of type `U`.
#[derive(Debug)]
pub struct CheckedDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Name + Default> Decoder for CheckedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let is_request = U::NAME.ends_with("Request");
        if is_request {
            // The message lies in one contiguous buffer: `chunk` is all of it.
            request_fields::check(&U::full_name(), buf.chunk()).map_err(refusal)?;
        }
        U::decode(buf).map(Some).map_err(|err| {
            if is_request {
                refusal(FieldViolation::malformed(err.to_string()))
            } else {
                Status::internal(err.to_string())
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The status of a refused request: `INVALID_ARGUMENT` with a `BadRequest` field
/// violation.
fn refusal(violation: FieldViolation) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{}: {}", violation.field, violation.description),
        ErrorDetails::with_bad_request_violation(violation.field, violation.description),
    )
}
