//! Generic TorchScript models: named tensors in, named tensors out. The manifest lists
//! the names of `forward`'s arguments in order (`inputs`) and, for a model that returns a
//! tuple, the names of its parts (`outputs`); a single output is called `output`.

use std::{collections::BTreeMap, path::Path};

use tch::{CModule, Device, IValue, Kind, Tensor};

use super::{InferenceError, worker::Runner};

/// A tensor's values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// 32-bit floats.
    Float(Vec<f32>),
    /// 64-bit integers.
    Int(Vec<i64>),
}

/// A dense tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Its shape.
    pub shape: Vec<i64>,
    /// Its values (as many as the shape holds).
    pub values: Values,
}

/// Tensors by name.
pub type Tensors = BTreeMap<String, TensorData>;

/// A generic model loaded on a device.
pub struct PredictRunner {
    module: CModule,
    inputs: Vec<String>,
    outputs: Vec<String>,
    device: Device,
}

impl PredictRunner {
    /// Loads `file` on `device`, called with `inputs` in this order.
    ///
    /// # Errors
    /// [`InferenceError::Load`] when libtorch refuses the file.
    pub fn load(
        file: &Path,
        inputs: Vec<String>,
        outputs: Vec<String>,
        device: Device,
    ) -> Result<Self, InferenceError> {
        let module = super::load_module(file, device)?;
        Ok(Self {
            module,
            inputs,
            outputs,
            device,
        })
    }

    fn predict(&self, given: &Tensors) -> Result<Tensors, InferenceError> {
        let invalid = |reason: String| InferenceError::Invalid {
            field: "inputs",
            reason,
        };
        if let Some(extra) = given.keys().find(|name| !self.inputs.contains(name)) {
            return Err(invalid(format!(
                "the model takes no input {extra:?} (it takes {})",
                self.inputs.join(", ")
            )));
        }
        let mut arguments = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            let data = given
                .get(name)
                .ok_or_else(|| invalid(format!("input {name:?} is missing")))?;
            let tensor = match &data.values {
                Values::Float(values) => Tensor::from_slice(values),
                Values::Int(values) => Tensor::from_slice(values),
            };
            arguments.push(IValue::Tensor(
                tensor.view(data.shape.as_slice()).to_device(self.device),
            ));
        }
        let output = tch::no_grad(|| self.module.forward_is(&arguments))
            .map_err(|err| InferenceError::Failed(super::torch_reason(&err)))?;
        let parts = match output {
            IValue::Tensor(tensor) => vec![tensor],
            IValue::Tuple(parts) => parts
                .into_iter()
                .map(|part| match part {
                    IValue::Tensor(tensor) => Ok(tensor),
                    other => Err(InferenceError::Failed(format!(
                        "the model returned {other:?} where a tensor belongs"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(InferenceError::Failed(format!(
                    "the model returned {other:?}, not tensors"
                )));
            }
        };
        let single = parts.len() == 1 && self.outputs.is_empty();
        parts
            .into_iter()
            .enumerate()
            .map(|(n, tensor)| {
                let name = if single {
                    "output".to_owned()
                } else {
                    self.outputs
                        .get(n)
                        .cloned()
                        .unwrap_or_else(|| format!("output{n}"))
                };
                Ok((name, data_of(&tensor)?))
            })
            .collect()
    }
}

fn data_of(tensor: &Tensor) -> Result<TensorData, InferenceError> {
    let failed = |err: tch::TchError| InferenceError::Failed(super::torch_reason(&err));
    let tensor = tensor.to_device(Device::Cpu);
    let shape = tensor.size();
    let flat = tensor.flatten(0, -1);
    let values = match tensor.kind() {
        Kind::Int | Kind::Int64 | Kind::Int16 | Kind::Int8 | Kind::Uint8 | Kind::Bool => {
            Values::Int(Vec::<i64>::try_from(&flat.to_kind(Kind::Int64)).map_err(failed)?)
        }
        _ => Values::Float(Vec::<f32>::try_from(&flat.to_kind(Kind::Float)).map_err(failed)?),
    };
    Ok(TensorData { shape, values })
}

impl Runner for PredictRunner {
    type Input = Tensors;
    type Output = Result<Tensors, String>;

    fn run(&mut self, items: &[Tensors]) -> Result<(Vec<Self::Output>, usize), InferenceError> {
        // Each request is its own call (shapes differ), and one request's bad input fails
        // only that request.
        let outputs = items
            .iter()
            .map(|item| self.predict(item).map_err(|err| err.to_string()))
            .collect();
        Ok((outputs, 0))
    }
}
