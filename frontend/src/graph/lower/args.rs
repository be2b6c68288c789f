//! Build args: the predefined platform args and the ARGs before the first
//! FROM ("meta args"), which expand every FROM line. (An ARG inside a stage
//! is dispatched with the other instructions.)

use std::collections::BTreeMap;

use super::Lowerer;
use crate::error::{Error, ErrorKind};
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
        // The stage being built: `--target` as given, else the last
        // stage's name, else `default` (BuildKit's defaultArgs).
        let target = self
            .options
            .target
            .clone()
            .filter(|target| !target.is_empty())
            .or_else(|| {
                self.stages
                    .stages
                    .last()
                    .and_then(|stage| stage.from.name.as_ref())
                    .map(|name| name.value.clone())
            })
            .unwrap_or_else(|| "default".to_owned());
        args.insert("TARGETSTAGE".to_owned(), target);
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
                self.meta_declared.insert(name.clone());
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
                if name == "SOURCE_DATE_EPOCH" && !self.options.build_args.contains_key(&name) {
                    // The Dockerfile's default epoch (BuildKit's convert.go
                    // resolves it before any stage): seconds, or nothing.
                    self.source_date_epoch = match value.as_deref() {
                        None | Some("") => None,
                        Some(text) => Some(text.parse::<u64>().map_err(|_| {
                            Error::new(
                                ErrorKind::InvalidSourceDateEpoch(text.to_owned()),
                                definition.name.span,
                            )
                            .with_hint("SOURCE_DATE_EPOCH is a number of seconds since 1970")
                        })?),
                    };
                }
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
