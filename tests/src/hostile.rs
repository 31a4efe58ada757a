//! Hostile requests for every method of the API, made from the compiled descriptors: the
//! values an attacker (or a careless client) sends, encoded straight to protobuf bytes and
//! sent without typed stubs.

use std::collections::HashMap;

use prost::{Message, bytes::Buf, bytes::BufMut};
use prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

/// One method of the API.
#[derive(Debug, Clone)]
pub struct Method {
    /// `/pkg.Service/Method`.
    pub path: String,
    /// Full name of the request message (no leading dot).
    pub input: String,
    /// Whether the client streams (the request is sent as a one-message stream).
    pub client_streaming: bool,
}

/// The API's methods and messages, read from `descriptor_set`.
pub struct Api {
    /// Every method of every service.
    pub methods: Vec<Method>,
    messages: HashMap<String, DescriptorProto>,
}

/// The kinds of hostile value a request is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// No field set.
    Empty,
    /// Every string 100 KB long.
    HugeStrings,
    /// Every string holds NUL and control characters.
    ControlCharacters,
    /// Every string a fresh, well-formed UUID (gets past id parsing, names nothing).
    UnknownIds,
    /// Every number at its extremes, every enum an unknown value.
    ExtremeNumbers,
    /// Every repeated field 5,000 items long.
    LongLists,
    /// Messages nested as deep as their types allow, and a `Struct` 200 levels deep.
    DeepNesting,
}

impl Hostility {
    /// Every kind.
    pub const ALL: [Hostility; 7] = [
        Hostility::Empty,
        Hostility::HugeStrings,
        Hostility::ControlCharacters,
        Hostility::UnknownIds,
        Hostility::ExtremeNumbers,
        Hostility::LongLists,
        Hostility::DeepNesting,
    ];
}

impl Api {
    /// The services of `descriptor_set` (an encoded `FileDescriptorSet`) in `package`.
    ///
    /// # Panics
    /// When the set does not decode.
    pub fn read(descriptor_set: &[u8], package: &str) -> Self {
        let set = FileDescriptorSet::decode(descriptor_set).expect("valid descriptor set");
        let mut messages = HashMap::new();
        let mut methods = Vec::new();
        for file in &set.file {
            for message in &file.message_type {
                collect(&mut messages, file.package(), message);
            }
            if file.package() != package {
                continue;
            }
            for service in &file.service {
                for method in &service.method {
                    methods.push(Method {
                        path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        input: method.input_type().trim_start_matches('.').to_owned(),
                        client_streaming: method.client_streaming(),
                    });
                }
            }
        }
        Self { methods, messages }
    }

    /// A request of type `message` filled the `hostility` way.
    pub fn request(&self, message: &str, hostility: Hostility) -> Vec<u8> {
        let mut out = Vec::new();
        if hostility != Hostility::Empty {
            self.fill(message, hostility, 0, &mut out);
        }
        out
    }

    fn fill(&self, message: &str, hostility: Hostility, depth: usize, out: &mut Vec<u8>) {
        if message == "google.protobuf.Struct" && hostility == Hostility::DeepNesting {
            out.extend(deep_struct(200));
            return;
        }
        let Some(descriptor) = self.messages.get(message) else {
            return;
        };
        for field in &descriptor.field {
            let repeats = if field.label() == Label::Repeated {
                if hostility == Hostility::LongLists {
                    5_000
                } else {
                    2
                }
            } else {
                1
            };
            for _ in 0..repeats {
                self.field(field, hostility, depth, out);
            }
        }
    }

    fn field(
        &self,
        field: &FieldDescriptorProto,
        hostility: Hostility,
        depth: usize,
        out: &mut Vec<u8>,
    ) {
        let number = u32::try_from(field.number()).expect("positive field number");
        let extreme = hostility == Hostility::ExtremeNumbers;
        match field.r#type() {
            Type::String => {
                let text = match hostility {
                    Hostility::HugeStrings => "a".repeat(100_000),
                    Hostility::ControlCharacters => "x\0y\u{1}\u{1b}[2J\u{7f}".to_owned(),
                    Hostility::UnknownIds => uuid::Uuid::now_v7().to_string(),
                    _ => "hostile".to_owned(),
                };
                delimited(number, text.as_bytes(), out);
            }
            Type::Bytes => {
                let len = if hostility == Hostility::HugeStrings {
                    100_000
                } else {
                    3
                };
                delimited(number, &vec![0u8; len], out);
            }
            Type::Message => {
                let nested = field.type_name().trim_start_matches('.');
                let limit = if hostility == Hostility::DeepNesting {
                    12
                } else {
                    3
                };
                if depth >= limit {
                    return;
                }
                let mut inner = Vec::new();
                self.fill(nested, hostility, depth + 1, &mut inner);
                delimited(number, &inner, out);
            }
            Type::Double => {
                key(number, 1, out);
                let value = if extreme { f64::NAN } else { 1.5 };
                out.put_f64_le(value);
            }
            Type::Float => {
                key(number, 5, out);
                let value = if extreme { f32::INFINITY } else { 1.5 };
                out.put_f32_le(value);
            }
            Type::Fixed64 | Type::Sfixed64 => {
                key(number, 1, out);
                out.put_u64_le(if extreme { u64::MAX } else { 1 });
            }
            Type::Fixed32 | Type::Sfixed32 => {
                key(number, 5, out);
                out.put_u32_le(if extreme { u32::MAX } else { 1 });
            }
            Type::Enum => {
                key(number, 0, out);
                varint(if extreme { 9_999 } else { 1 }, out);
            }
            Type::Group => {}
            _ => {
                // int32, int64, uint32, uint64, sint32, sint64, bool: all varints.
                key(number, 0, out);
                varint(if extreme { u64::MAX } else { 1 }, out);
            }
        }
    }
}

fn collect(
    messages: &mut HashMap<String, DescriptorProto>,
    scope: &str,
    message: &DescriptorProto,
) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        collect(messages, &name, nested);
    }
    messages.insert(name, message.clone());
}

/// A `google.protobuf.Struct` `{"k": [[[...]]]}` nested `levels` lists deep.
fn deep_struct(levels: usize) -> Vec<u8> {
    let mut value = prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue("bottom".into())),
    };
    for _ in 0..levels {
        value = prost_types::Value {
            kind: Some(prost_types::value::Kind::ListValue(
                prost_types::ListValue {
                    values: vec![value],
                },
            )),
        };
    }
    prost_types::Struct {
        fields: [("k".to_owned(), value)].into(),
    }
    .encode_to_vec()
}

fn key(number: u32, wire_type: u64, out: &mut Vec<u8>) {
    varint((u64::from(number) << 3) | wire_type, out);
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(number, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Sends `request` (encoded bytes) to `method` with `key`; reads every reply message.
///
/// # Errors
/// The status the server answers with.
pub async fn call(
    channel: Channel,
    method: &Method,
    key: &str,
    request: Vec<u8>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let path = method.path.parse().expect("valid path");
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("valid metadata"),
    );
    let mut replies = if method.client_streaming {
        let stream = tokio_stream::iter([request]);
        let mut call = tonic::Request::new(stream);
        *call.metadata_mut() = metadata;
        grpc.client_streaming(call, path, RawCodec).await?;
        return Ok(());
    } else {
        let mut call = tonic::Request::new(request);
        *call.metadata_mut() = metadata;
        grpc.server_streaming(call, path, RawCodec)
            .await?
            .into_inner()
    };
    while replies.message().await?.is_some() {}
    Ok(())
}

/// Sends bytes as they are; reads replies as nothing.
#[derive(Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        buf.advance(buf.remaining());
        Ok(Some(()))
    }
}
