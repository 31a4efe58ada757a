//! What a plugin says it offers, checked and pinned.
//!
//! A transport reads a [`RawManifest`] from the plugin (gRPC `Describe`, MCP
//! `initialize` + `tools/list`); [`Manifest::pin`] turns it into the normal form the server
//! stores: sizes capped, control and direction-changing characters stripped from every
//! text a model will read, tool names checked against the names models accept, argument
//! schemas compiled, tools sorted. Its SHA-256 is what an owner approves: a plugin whose
//! manifest hash changes is disabled until someone approves the new one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most tools one plugin may offer.
pub const MAX_TOOLS: usize = 64;
/// Longest plugin or tool description kept, in characters.
const MAX_DESCRIPTION: usize = 2048;
/// Longest plugin name or version in a manifest, in characters.
const MAX_LABEL: usize = 128;
/// Largest argument schema, serialised.
const MAX_SCHEMA_BYTES: usize = 16 * 1024;
/// Longest name a model accepts for a function (OpenAI's limit, the strictest).
const MAX_FUNCTION_NAME: usize = 64;
/// Between the plugin's and the tool's name in the name the model sees.
pub const TOOL_SEPARATOR: &str = "__";

/// What a plugin may do on the tenant's behalf; anything not granted is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read the conversation's working memory.
    ReadWorkingMemory,
    /// Replace the conversation's working memory.
    WriteWorkingMemory,
    /// Receive the long-term memories recalled for the turn.
    ReadMemory,
    /// Receive content the PHI guard flagged, unredacted.
    ReceivePhi,
    /// Reach hosts outside the premises (declared; the deployment's network enforces it).
    NetworkEgress,
}

impl Capability {
    /// Every capability, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::ReadWorkingMemory,
        Self::WriteWorkingMemory,
        Self::ReadMemory,
        Self::ReceivePhi,
        Self::NetworkEgress,
    ];

    /// Whether it gives the plugin memory (working or recalled).
    pub const fn is_memory(self) -> bool {
        matches!(
            self,
            Self::ReadWorkingMemory | Self::WriteWorkingMemory | Self::ReadMemory
        )
    }

    /// Its stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadWorkingMemory => "read_working_memory",
            Self::WriteWorkingMemory => "write_working_memory",
            Self::ReadMemory => "read_memory",
            Self::ReceivePhi => "receive_phi",
            Self::NetworkEgress => "network_egress",
        }
    }

    /// The capability a stored name or a manifest's `CAPABILITY_…` name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        let name = name.strip_prefix("CAPABILITY_").unwrap_or(name);
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

/// A manifest as a plugin sent it.
#[derive(Debug, Clone, Default)]
pub struct RawManifest {
    /// The plugin's own name for itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it is for.
    pub description: String,
    /// What it offers.
    pub tools: Vec<RawTool>,
    /// Capability names it asks for.
    pub requested: Vec<String>,
}

/// A tool as a plugin described it.
#[derive(Debug, Clone, Default)]
pub struct RawTool {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments object; `Null` when the plugin gave none.
    pub parameters: serde_json::Value,
}

/// A checked manifest in normal form: what is stored, shown and hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The plugin's own name for itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it is for.
    pub description: String,
    /// Its tools, by name.
    pub tools: Vec<Tool>,
    /// Capabilities it asks for, sorted.
    pub requested: Vec<Capability>,
}

/// A tool in normal form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Unique within the plugin.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments object.
    pub parameters: serde_json::Value,
}

/// Why a manifest cannot be pinned.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct ManifestError {
    /// Where in the manifest, e.g. `manifest.tools[2].name`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Manifest {
    /// The normal form of `raw` for the plugin the tenant calls `plugin`.
    ///
    /// # Errors
    /// [`ManifestError`] naming the first part that cannot be accepted.
    pub fn pin(raw: RawManifest, plugin: &str) -> Result<Self, ManifestError> {
        if raw.tools.len() > MAX_TOOLS {
            return Err(refuse(
                "manifest.tools",
                format!("{} tools; at most {MAX_TOOLS}", raw.tools.len()),
            ));
        }
        let mut tools = Vec::with_capacity(raw.tools.len());
        for (index, tool) in raw.tools.into_iter().enumerate() {
            tools.push(pin_tool(tool, plugin, index)?);
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(twin) = tools.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(refuse(
                "manifest.tools",
                format!("tool {:?} is listed twice", twin[0].name),
            ));
        }
        let mut requested = Vec::with_capacity(raw.requested.len());
        for (index, name) in raw.requested.iter().enumerate() {
            let capability = Capability::parse(name).ok_or_else(|| {
                refuse(
                    format!("manifest.requested_capabilities[{index}]"),
                    format!("unknown capability {:?}", clean(name, MAX_LABEL)),
                )
            })?;
            requested.push(capability);
        }
        requested.sort();
        requested.dedup();
        Ok(Self {
            name: clean(&raw.name, MAX_LABEL),
            version: clean(&raw.version, MAX_LABEL),
            description: clean(&raw.description, MAX_DESCRIPTION),
            tools,
            requested,
        })
    }

    /// SHA-256 of the normal form (object keys sorted, as `serde_json` writes them).
    pub fn sha256(&self) -> [u8; 32] {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(bytes).into()
    }

    /// The tool called `name`.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }
}

fn pin_tool(tool: RawTool, plugin: &str, index: usize) -> Result<Tool, ManifestError> {
    let field = |part: &str| format!("manifest.tools[{index}].{part}");
    let longest = MAX_FUNCTION_NAME - plugin.len() - TOOL_SEPARATOR.len();
    let name_fits = !tool.name.is_empty()
        && tool.name.len() <= longest
        && tool
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_fits {
        return Err(refuse(
            field("name"),
            format!(
                "{:?}: tool names must be 1 to {longest} letters, digits, '_' or '-' (with the \
                 plugin's name they reach models as \"{plugin}{TOOL_SEPARATOR}<tool>\", at most \
                 {MAX_FUNCTION_NAME} characters)",
                clean(&tool.name, MAX_LABEL)
            ),
        ));
    }
    let parameters = match tool.parameters {
        serde_json::Value::Null => serde_json::json!({ "type": "object", "properties": {} }),
        serde_json::Value::Object(schema) => {
            let mut schema = serde_json::Value::Object(schema);
            clean_strings(&mut schema);
            schema
        }
        _ => return Err(refuse(field("parameters_schema"), "must be a JSON object")),
    };
    if serde_json::to_vec(&parameters).map_or(usize::MAX, |b| b.len()) > MAX_SCHEMA_BYTES {
        return Err(refuse(
            field("parameters_schema"),
            format!("larger than {MAX_SCHEMA_BYTES} bytes"),
        ));
    }
    if parameters.get("type").is_some_and(|kind| kind != "object") {
        return Err(refuse(
            field("parameters_schema"),
            "must describe an object (\"type\": \"object\")",
        ));
    }
    if let Err(err) = jsonschema::validator_for(&parameters) {
        return Err(refuse(
            field("parameters_schema"),
            format!("is not a valid JSON Schema: {err}"),
        ));
    }
    Ok(Tool {
        name: tool.name,
        description: clean(&tool.description, MAX_DESCRIPTION),
        parameters,
    })
}

/// Whether `c` may reach a model: no control characters but the line break, and none of
/// the invisible characters that reorder or hide text.
fn kept(c: char) -> bool {
    (c == '\n' || !c.is_control())
        && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` without what [`kept`] drops, trimmed, at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| kept(*c))
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Cleans every string (keys included) in a schema.
fn clean_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => *text = clean(text, MAX_DESCRIPTION),
        serde_json::Value::Array(items) => items.iter_mut().for_each(clean_strings),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                clean_strings(&mut item);
                map.insert(clean(&key, MAX_LABEL), item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(tools: Vec<RawTool>) -> RawManifest {
        RawManifest {
            name: "weather".into(),
            version: "1.0".into(),
            description: "Forecasts".into(),
            tools,
            requested: vec!["CAPABILITY_READ_MEMORY".into()],
        }
    }

    fn tool(name: &str) -> RawTool {
        RawTool {
            name: name.into(),
            description: "Looks it up".into(),
            parameters: json!({ "type": "object", "properties": { "city": { "type": "string" } } }),
        }
    }

    #[test]
    fn a_pinned_manifest_is_sorted_cleaned_and_hashed_the_same_whatever_the_order() {
        let mut first = raw(vec![tool("b_tool"), tool("a_tool")]);
        first.description = "Fore\u{202E}casts\u{7}".into();
        let second = raw(vec![tool("a_tool"), tool("b_tool")]);
        let first = Manifest::pin(first, "weather").expect("pins");
        let second = Manifest::pin(second, "weather").expect("pins");
        assert_eq!(first.tools[0].name, "a_tool");
        assert_eq!(first.description, "Forecasts");
        assert_eq!(first.requested, [Capability::ReadMemory]);
        assert_eq!(first.sha256(), second.sha256());
        let mut changed = second.clone();
        changed.tools[1].description.push('!');
        assert_ne!(changed.sha256(), second.sha256());
    }

    #[test]
    fn names_models_refuse_and_bad_schemas_are_refused_naming_the_tool() {
        let long = "x".repeat(64 - "weather__".len() + 1);
        for (bad, field) in [
            (tool("has space"), "manifest.tools[0].name"),
            (tool(&long), "manifest.tools[0].name"),
            (
                RawTool {
                    parameters: json!({ "type": "string" }),
                    ..tool("ok")
                },
                "manifest.tools[0].parameters_schema",
            ),
            (
                RawTool {
                    parameters: json!({ "type": "object", "minProperties": "two" }),
                    ..tool("ok")
                },
                "manifest.tools[0].parameters_schema",
            ),
        ] {
            let err = Manifest::pin(raw(vec![bad]), "weather").expect_err("refused");
            assert_eq!(err.field, field, "{err}");
        }
        let mut twice = raw(vec![tool("same"), tool("same")]);
        assert_eq!(
            Manifest::pin(twice.clone(), "weather")
                .expect_err("twice")
                .field,
            "manifest.tools"
        );
        twice.tools.pop();
        twice.requested = vec!["CAPABILITY_TIME_TRAVEL".into()];
        assert_eq!(
            Manifest::pin(twice, "weather").expect_err("unknown").field,
            "manifest.requested_capabilities[0]"
        );
    }

    #[test]
    fn a_tool_without_a_schema_takes_no_arguments() {
        let pinned = Manifest::pin(
            raw(vec![RawTool {
                parameters: serde_json::Value::Null,
                ..tool("now")
            }]),
            "clock",
        )
        .expect("pins");
        assert_eq!(pinned.tools[0].parameters["type"], "object");
    }
}
