//! Build args: the predefined platform args and the ARGs before the first
//! FROM ("meta args"), which expand every FROM line. (An ARG inside a stage
//! is dispatched with the other instructions.)

use std::collections::BTreeMap;

use super::Lowerer;
use crate::error::Error;
use crate::instructions::Instruction;

impl Lowerer<'_> {
    pub(super) fn platform_args(&self) -> BTreeMap<String, String> {
        let mut args = BTreeMap::new();
        for (prefix, platform) in [
            ("BUILD", &self.build_platform),
            ("TARGET", &self.target_platform),
        ] {
            args.insert(format!("{prefix}PLATFORM"), platform.to_string());
            args.insert(format!("{prefix}OS"), platform.os.clone());
            args.insert(format!("{prefix}ARCH"), platform.architecture.clone());
            args.insert(
                format!("{prefix}VARIANT"),
                platform.variant.clone().unwrap_or_default(),
            );
        }
        args
    }

    /// Evaluate the ARGs before the first FROM.
    pub(super) fn meta_args(&mut self) -> Result<(), Error> {
        for located in &self.stages.meta_args {
            let Instruction::Arg(definitions) = &located.instruction else {
                continue;
            };
            for definition in definitions {
                let name = definition.name.value.clone();
                let value = match self.options.build_args.get(&name) {
                    Some(value) => {
                        self.used_args.insert(name.clone());
                        Some(value.clone())
                    }
                    None => match &definition.default {
                        Some(default) => {
                            let meta = self.meta.clone();
                            Some(self.expand(default, &meta)?)
                        }
                        None => None,
                    },
                };
                match value {
                    Some(value) => {
                        self.meta.insert(name, value);
                    }
                    None => {
                        // Declared without a value: unset, but known.
                        self.meta.remove(&name);
                    }
                }
            }
        }
        Ok(())
    }
}
