//! Provider-defined functions (Terraform >= 1.8), modelled on terraform-plugin-framework's
//! `function.Function`: a name, positional typed parameters, a return type and a pure
//! `call`. Functions never see the provider's configuration or client: Terraform may call
//! them on an unconfigured provider, during validation, before any apply.

use clara_tfplugin::{Type, Value};

/// One positional parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: &'static str,
    pub ty: Type,
    pub description: String,
    /// When false, Terraform itself refuses a null argument before calling the provider.
    pub allow_null: bool,
}

impl Parameter {
    pub fn string(name: &'static str, description: impl Into<String>) -> Self {
        Parameter {
            name,
            ty: Type::String,
            description: description.into(),
            allow_null: false,
        }
    }

    pub fn nullable(mut self) -> Self {
        self.allow_null = true;
        self
    }
}

/// Why a call failed. `argument` is the 0-based index of the offending parameter: Terraform
/// then names that parameter in its diagnostic and points at that argument in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub argument: Option<usize>,
    pub message: String,
}

impl FunctionError {
    /// An error about argument `index`.
    pub fn argument(index: usize, message: impl Into<String>) -> Self {
        FunctionError {
            argument: Some(index),
            message: message.into(),
        }
    }

    /// An error about the call as a whole.
    pub fn call(message: impl Into<String>) -> Self {
        FunctionError {
            argument: None,
            message: message.into(),
        }
    }
}

pub trait Function: Send + Sync {
    /// The name after `provider::<local name>::`.
    fn name(&self) -> &'static str;
    fn parameters(&self) -> Vec<Parameter>;
    fn return_type(&self) -> Type;
    /// One line.
    fn summary(&self) -> &'static str;
    /// Markdown.
    fn description(&self) -> String;
    /// Arguments arrive decoded with each parameter's type, wholly known (no parameter
    /// allows unknown values, so Terraform answers unknown itself without calling).
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}
