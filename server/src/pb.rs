//! Generated protobuf types, clients and servers of the public API (`proto/`).
//!
//! Nothing below `api/` uses these types directly; domain modules convert to and from them
//! at the API boundary.
#![allow(missing_docs, clippy::all)]

/// Package `codexcontinue.v1`: the services clients call.
pub mod v1 {
    tonic::include_proto!("codexcontinue.v1");

    /// Encoded `FileDescriptorSet` of package `codexcontinue.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("codexcontinue_v1_descriptor");
}

/// Package `codexcontinue.plugin.v1`: the protocol a plugin serves to the server.
pub mod plugin {
    tonic::include_proto!("codexcontinue.plugin.v1");
}

/// JSON ↔ `google.protobuf.Struct`, for the API's free-form fields and the plugin
/// protocol's arguments and results.
pub mod json {
    /// A JSON value as a protobuf value.
    pub fn to_value(value: serde_json::Value) -> prost_types::Value {
        use prost_types::value::Kind;
        let kind = match value {
            serde_json::Value::Null => Kind::NullValue(0),
            serde_json::Value::Bool(b) => Kind::BoolValue(b),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
            serde_json::Value::String(s) => Kind::StringValue(s),
            serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
                values: items.into_iter().map(to_value).collect(),
            }),
            serde_json::Value::Object(map) => Kind::StructValue(prost_types::Struct {
                fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
            }),
        };
        prost_types::Value { kind: Some(kind) }
    }

    /// A JSON object as a protobuf struct (anything else: an empty struct).
    pub fn to_struct(value: serde_json::Value) -> prost_types::Struct {
        match to_value(value).kind {
            Some(prost_types::value::Kind::StructValue(fields)) => fields,
            _ => prost_types::Struct::default(),
        }
    }

    /// A protobuf number as JSON: whole numbers (exactly representable) as integers, since
    /// `Struct` has only doubles and JSON readers such as schema validators tell `3` from
    /// `3.0`.
    fn number(n: f64) -> Result<serde_json::Value, String> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if n.fract() == 0.0 && n.abs() <= EXACT {
            #[allow(clippy::cast_possible_truncation)]
            return Ok(serde_json::Value::from(n as i64));
        }
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{n} is not a number JSON can hold"))
    }

    /// A protobuf struct as a JSON object.
    ///
    /// # Errors
    /// What is wrong when it holds a number JSON cannot (NaN or infinite).
    pub fn from_struct(value: prost_types::Struct) -> Result<serde_json::Value, String> {
        use prost_types::value::Kind;
        fn convert(value: prost_types::Value) -> Result<serde_json::Value, String> {
            Ok(match value.kind {
                None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
                Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
                Some(Kind::NumberValue(n)) => number(n)?,
                Some(Kind::StringValue(s)) => serde_json::Value::String(s),
                Some(Kind::ListValue(list)) => serde_json::Value::Array(
                    list.values
                        .into_iter()
                        .map(convert)
                        .collect::<Result<_, _>>()?,
                ),
                Some(Kind::StructValue(fields)) => from_struct(fields)?,
            })
        }
        Ok(serde_json::Value::Object(
            value
                .fields
                .into_iter()
                .map(|(k, v)| Ok((k, convert(v)?)))
                .collect::<Result<_, String>>()?,
        ))
    }
}
