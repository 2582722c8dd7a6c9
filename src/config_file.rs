//! Reading a TOML settings file (`--config`) into a config type.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Reads and parses the TOML file at `path`; unknown keys are refused by the config types.
///
/// # Errors
/// A readable reason naming the file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}
