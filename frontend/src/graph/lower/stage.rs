//! Stages: their names and FROM lines, which stages the target needs, and
//! lowering one (its base, its ONBUILD triggers, its instructions); and
//! `--from` references to a stage or an image.

use super::{Instructions, Lowerer, MAX_STAGE_NESTING, Platform, StageStatus, State, Step};
use crate::error::{Error, ErrorKind};
use crate::graph::DEFAULT_PATH;
use crate::graph::mount;
use crate::graph::{ConfigEdit, NamedContext, Origin, StageInfo, VertexId};
use crate::instructions::{self, FlagValue, Instruction, Located, StaticReference};
use crate::span::Span;

impl<'a> Lowerer<'a> {
    /// Expand every FROM and check stage names.
    pub(super) fn stage_infos(&mut self) -> Result<(), Error> {
        let meta = self.meta.clone();
        self.default_base_names();
        // BuildKit checks every FROM line before it parses the references
        // of the images: the first that does not parse is reported after.
        let mut invalid = None;
        for (index, stage) in self.stages.stages.iter().enumerate() {
            self.at = stage.from_span;
            // A stage a named context replaces is that image, whatever its
            // FROM and instructions say (BuildKit's convert.go).
            let replacement = self.stage_context(index);
            let base = match replacement {
                Some((name, context)) => {
                    self.replaced.insert(index);
                    match context {
                        NamedContext::Image(image) => image.clone(),
                        // Not an image: named for the plan and the cache
                        // report, and never looked up.
                        NamedContext::Directory | NamedContext::Url(_) => format!("context:{name}"),
                    }
                }
                None => self.expand_from(&stage.from.image, &meta)?,
            };
            if let Some(flag) = &stage.from.platform {
                self.check_from_platform(stage, &flag.value, &meta)?;
            }
            if base.is_empty() {
                return Err(Error::new(
                    ErrorKind::BlankBaseName(stage.from.image.value.clone()),
                    stage.from.image.span,
                )
                .with_hint("set the variable with `--build-arg` or give the ARG a default"));
            }
            let on_stage = self
                .names
                .get(&base.to_ascii_lowercase())
                .is_some_and(|earlier| *earlier < index);
            let by_context =
                replacement.is_some_and(|(_, context)| !matches!(context, NamedContext::Image(_)));
            if invalid.is_none()
                && !on_stage
                && !by_context
                && !base.eq_ignore_ascii_case("scratch")
                && !crate::lint::is_valid_reference(&base)
            {
                invalid = Some(Error::new(
                    ErrorKind::InvalidReference(base.clone()),
                    stage.from.image.span,
                ));
            }
            let name = stage.from.name.as_ref().map(|word| word.value.clone());
            if let Some(name_word) = &stage.from.name {
                // A name given twice is DuplicateStageName's to report;
                // the later stage takes the name, as in BuildKit.
                self.names.insert(name_word.value.clone(), index);
            }
            self.infos.push(StageInfo {
                index,
                name,
                base,
                built: false,
                rootfs: None,
                last: None,
                span: stage.from_span,
            });
        }
        match invalid {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Expand a FROM word with the ARGs before FROM, reporting
    /// UndefinedArgInFrom for a name none of them declares.
    fn expand_from(
        &mut self,
        word: &crate::ast::Word,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let expansion = self.expansion(word, meta)?;
        self.undefined_in_from(&expansion.unmatched);
        Ok(expansion.result)
    }

    fn undefined_in_from(&mut self, unmatched: &std::collections::BTreeSet<String>) {
        let known: std::collections::BTreeSet<String> = self
            .meta_declared
            .iter()
            .cloned()
            .chain(self.meta.keys().cloned())
            .collect();
        for name in unmatched {
            if known.contains(name) {
                continue;
            }
            let near = crate::lint::suggest(name, known.iter().map(String::as_str));
            let message = crate::lint::undefined_arg_in_from(name, near);
            self.warn_once("UndefinedArgInFrom", name.clone(), message, self.at);
        }
    }

    /// The checks of `FROM --platform=`: UndefinedArgInFrom,
    /// RedundantTargetPlatform and FromPlatformFlagConstDisallowed.
    fn check_from_platform(
        &mut self,
        stage: &instructions::Stage,
        platform: &crate::ast::Word,
        meta: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let expansion = self.expansion(platform, meta)?;
        self.undefined_in_from(&expansion.unmatched);
        let span = stage.from_span;
        if expansion.matched.len() == 1
            && expansion.unmatched.is_empty()
            && expansion.matched.contains("TARGETPLATFORM")
            && meta.get("TARGETPLATFORM") == Some(&expansion.result)
        {
            self.warn_once(
                "RedundantTargetPlatform",
                String::new(),
                crate::lint::redundant_target_platform(&platform.value),
                span,
            );
        }
        if expansion.matched.is_empty()
            && expansion.unmatched.is_empty()
            && let Some((os, arch)) = crate::lint::platform_parts(&expansion.result)
        {
            // A stage named for its platform (`AS build-arm64`) may pin it.
            let name = stage
                .from
                .name
                .as_ref()
                .map(|name| name.value.as_str())
                .unwrap_or_default();
            if !name.contains(&os) && !name.contains(&arch) {
                self.warn_once(
                    "FromPlatformFlagConstDisallowed",
                    String::new(),
                    crate::lint::from_platform_flag_const_disallowed(&expansion.result),
                    span,
                );
            }
        }
        Ok(())
    }

    /// The named context that replaces stage `index` (one named as the
    /// stage is), if any.
    fn stage_context(&self, index: usize) -> Option<(&'a str, &'a NamedContext)> {
        let name = self.stages.stages[index].from.name.as_ref()?;
        self.options
            .named_contexts
            .get_key_value(&name.value)
            .map(|(name, context)| (name.as_str(), context))
    }

    /// The image a named context gives for the image `reference`, looked
    /// up by its short form as BuildKit's `NamedContext` does
    /// (`docker.io/library/busybox:latest` is `busybox`).
    pub(super) fn named_image(&self, reference: &str) -> Option<(&'a str, &'a NamedContext)> {
        if self.options.named_contexts.is_empty() {
            return None;
        }
        let mut short = reference;
        for prefix in [
            "docker.io/library/",
            "index.docker.io/library/",
            "docker.io/",
            "index.docker.io/",
        ] {
            if let Some(rest) = short.strip_prefix(prefix) {
                short = rest;
                break;
            }
        }
        let short = short.strip_suffix(":latest").unwrap_or(short);
        self.options
            .named_contexts
            .get_key_value(short)
            .map(|(name, context)| (name.as_str(), context))
    }

    /// InvalidDefaultArgInFrom: each FROM expanded with the ARGs before
    /// FROM at their defaults (no build arguments) must name an image. A
    /// default that does not expand abandons the check, as in BuildKit.
    fn default_base_names(&mut self) {
        let mut defaults = self.platform_args();
        for located in &self.stages.meta_args {
            let Instruction::Arg(definitions) = &located.instruction else {
                continue;
            };
            for definition in definitions {
                match &definition.default {
                    Some(default) => match self.expansion(default, &defaults) {
                        Ok(expansion) => {
                            defaults.insert(definition.name.value.clone(), expansion.result);
                        }
                        Err(_) => return,
                    },
                    None => {
                        defaults.remove(&definition.name.value);
                    }
                }
            }
        }
        for stage in &self.stages.stages {
            let Ok(expansion) = self.expansion(&stage.from.image, &defaults) else {
                return;
            };
            if !crate::lint::is_valid_reference(&expansion.result) {
                self.warn_once(
                    "InvalidDefaultArgInFrom",
                    String::new(),
                    crate::lint::invalid_default_arg_in_from(&stage.from.image.value),
                    stage.from_span,
                );
            }
        }
    }

    /// The stage a literal reference (name or index) names, if any.
    pub(super) fn stage_by_reference(&self, reference: &str) -> Option<usize> {
        self.names
            .get(&reference.to_ascii_lowercase())
            .copied()
            .or_else(|| {
                reference
                    .parse::<usize>()
                    .ok()
                    .filter(|index| *index < self.infos.len())
            })
    }

    /// The earlier stage that stage `index` is built `FROM`, if any.
    pub(super) fn base_stage(&self, index: usize) -> Option<usize> {
        if self.replaced.contains(&index) {
            return None;
        }
        self.names
            .get(&self.infos[index].base.to_ascii_lowercase())
            .copied()
            .filter(|base| *base < index)
    }

    /// Stages `index` needs, as far as is known without expanding anything.
    pub(super) fn static_dependencies(&self, index: usize) -> Vec<usize> {
        let mut dependencies: Vec<usize> = self.base_stage(index).into_iter().collect();
        // From the stage's summary when its instructions are not held.
        for reference in self.instructions[index].static_references() {
            let reference = match reference {
                StaticReference::CopyFrom(from) => Some(from),
                StaticReference::Mount(value) => {
                    mount::parse(&value).ok().and_then(|parsed| parsed.from)
                }
            };
            dependencies.extend(
                reference
                    .and_then(|reference| self.stage_by_reference(&reference))
                    .filter(|dependency| *dependency != index),
            );
        }
        dependencies
    }

    /// The stages `target` needs by literal reference, in an order where
    /// each comes after what it needs (iterative depth-first post-order).
    pub(super) fn static_order(&self, target: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut visited = vec![false; self.infos.len()];
        let mut stack = vec![(target, false)];
        while let Some((index, expanded)) = stack.pop() {
            if expanded {
                order.push(index);
                continue;
            }
            if visited[index] {
                continue;
            }
            visited[index] = true;
            stack.push((index, true));
            for dependency in self.static_dependencies(index).into_iter().rev() {
                if !visited[dependency] {
                    stack.push((dependency, false));
                }
            }
        }
        order
    }

    pub(super) fn stage_list(&self) -> String {
        let names: Vec<String> = self
            .infos
            .iter()
            .map(|info| match &info.name {
                Some(name) => format!("`{name}` ({})", info.index),
                None => format!("{} (unnamed)", info.index),
            })
            .collect();
        names.join(", ")
    }

    pub(super) fn target(&self) -> Result<usize, Error> {
        let Some(target) = &self.options.target else {
            return Ok(self.infos.len() - 1);
        };
        let wanted = target.to_ascii_lowercase();
        self.infos
            .iter()
            .position(|info| info.name.as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .infos
                    .iter()
                    .filter_map(|info| info.name.as_deref())
                    .collect();
                let error = Error::unplaced(ErrorKind::UnknownTarget(target.clone()));
                match instructions::suggest(&wanted, &names) {
                    Some(near) => error.with_hint(format!("did you mean `{near}`?")),
                    None if names.is_empty() => {
                        error.with_hint("no stage is named: name one with `FROM <image> AS <name>`")
                    }
                    None => error.with_hint(format!("the named stages are {}", names.join(", "))),
                }
            })
    }

    /// Lower stage `index` (once) and return its final state.
    pub(super) fn lower_stage(
        &mut self,
        index: usize,
        referenced_at: Span,
    ) -> Result<State, Error> {
        match &self.status[index] {
            StageStatus::Done(state) => return Ok((**state).clone()),
            StageStatus::InProgress => {
                return Err(Error::new(
                    ErrorKind::CircularDependency(self.infos[index].label()),
                    referenced_at,
                ));
            }
            StageStatus::Pending => {}
        }
        if self.nesting >= MAX_STAGE_NESTING {
            return Err(Error::new(
                ErrorKind::StagesTooDeep(MAX_STAGE_NESTING),
                referenced_at,
            ));
        }
        self.nesting += 1;
        let outcome = self.lower_stage_inner(index);
        self.nesting -= 1;
        outcome
    }

    pub(super) fn lower_stage_inner(&mut self, index: usize) -> Result<State, Error> {
        self.status[index] = StageStatus::InProgress;
        let stages = self.stages;
        let stage = &stages.stages[index];
        let origin = Some(Origin {
            span: stage.from_span,
            line: stage.from_lines.0,
            end_line: stage.from_lines.1,
        });
        let base = self.infos[index].base.clone();
        let platform = match &stage.from.platform {
            Some(flag) => {
                let meta = self.meta.clone();
                let text = self.expand(&flag.value, &meta)?;
                Platform::parse(&text)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidPlatform(text), flag.value.span))?
            }
            None => self.target_platform.clone(),
        };
        let mut state = match self.base_stage(index) {
            Some(base_index) => {
                // Built on a stage: its state, its ARGs included (BuildKit
                // carries a base stage's build args over), and the ONBUILD
                // triggers written in it run here, not passed on.
                let mut state = self.lower_stage(base_index, stage.from.image.span)?;
                state.lint = state.lint.child();
                // (Recorded as the base stage was lowered: its
                // instructions are gone by now.)
                let triggers = self.stage_triggers[base_index].clone();
                if !triggers.is_empty() {
                    let from = Located {
                        instruction: Instruction::From(Box::new(stage.from.clone())),
                        span: stage.from_span,
                        original: String::new(),
                        lines: stage.from_lines,
                    };
                    let step = Step {
                        stage: index,
                        number: 1,
                        total: 1,
                        located: &from,
                    };
                    self.config(&step, &mut state, ConfigEdit::ClearOnbuild);
                    self.onbuild_triggers(&triggers, index, &mut state, stage.from_span, origin)?;
                }
                state
            }
            None => {
                let named = match self.replaced.contains(&index) {
                    true => self.stage_context(index),
                    false => self.named_image(&base),
                };
                let image = match named {
                    Some((_, NamedContext::Image(image))) => image.clone(),
                    Some(_) => "scratch".to_owned(),
                    None => base.clone(),
                };
                let (fs, config) = match named {
                    Some((name, context @ (NamedContext::Directory | NamedContext::Url(_)))) => {
                        let fs =
                            self.named_base(name, context, index, origin, stage.from.image.span)?;
                        (fs, super::ImageConfig::default())
                    }
                    _ => {
                        self.image_vertex(&image, &platform, index, origin, stage.from.image.span)?
                    }
                };
                // An image the resolver did not give (none in `--check` and
                // `--dry-run`) has an unknown config.
                let env_unknown = !image.eq_ignore_ascii_case("scratch")
                    && !self
                        .resolved
                        .get(&(image.clone(), platform.to_string()))
                        .is_some_and(|(pinned, _)| pinned.is_some());
                // InvalidBaseImagePlatform: an image whose config says
                // another OS or architecture than the stage's.
                if let Some(actual) = &config.platform
                    && (actual.os != platform.os || actual.architecture != platform.architecture)
                {
                    self.warn_once(
                        "InvalidBaseImagePlatform",
                        String::new(),
                        crate::lint::invalid_base_image_platform(
                            &image,
                            &platform.to_string(),
                            &actual.to_string(),
                        ),
                        stage.from_span,
                    );
                }
                let lint = crate::lint::StageLint {
                    shell_set: !config.shell.is_empty(),
                    env_unknown,
                    ..Default::default()
                };
                let mut state = State {
                    env: config
                        .env
                        .iter()
                        .map(|entry| {
                            if entry.contains('=') {
                                entry.clone()
                            } else {
                                format!("{entry}=")
                            }
                        })
                        .collect(),
                    shared_env: None,
                    args: Vec::new(),
                    user: config.user.clone(),
                    workdir: if config.workdir.is_empty() {
                        "/".to_owned()
                    } else {
                        config.workdir.clone()
                    },
                    shell: if config.shell.is_empty() {
                        vec!["/bin/sh".to_owned(), "-c".to_owned()]
                    } else {
                        config.shell.clone()
                    },
                    fs,
                    last: fs,
                    lint,
                };
                if state.env_value("PATH").is_none() {
                    state.env.insert(0, format!("PATH={DEFAULT_PATH}"));
                }
                self.onbuild_triggers(&config.onbuild, index, &mut state, stage.from_span, origin)?;
                state
            }
        };
        // Owned instructions are dropped as they are lowered. (ARGs are
        // not cleared: a stage built on a stage inherits them, as above.)
        let mut instructions =
            std::mem::replace(&mut self.instructions[index], Instructions::Taken);
        if self.replaced.contains(&index) {
            instructions = Instructions::Borrowed(&[]);
        }
        // Numbered as BuildKit numbers steps (convert.go, cmdTotal): FROM
        // an image counts, and so do the instructions that change files.
        let from_image = self.base_stage(index).is_none() && !base.eq_ignore_ascii_case("scratch");
        let mut number = usize::from(from_image);
        let total = number + instructions.steps();
        let escape = self.escape;
        let mut dispatch = |_position: usize, located: &Located| {
            if located.instruction.is_step() {
                number += 1;
            }
            let step = Step {
                stage: index,
                number: number.max(1),
                total,
                located,
            };
            self.dispatch(&step, &located.instruction, &mut state)
        };
        match instructions {
            Instructions::Borrowed(slice) => {
                for (position, located) in slice.iter().enumerate() {
                    dispatch(position, located)?;
                }
            }
            Instructions::Owned(mut vec) => {
                // Last first, so that each is popped and dropped once lowered,
                // and the list shrinks as it empties.
                vec.reverse();
                let mut position = 0;
                while let Some(located) = vec.pop() {
                    dispatch(position, &located)?;
                    position += 1;
                    if vec.capacity() > 2 * vec.len() + 1024 {
                        vec.shrink_to_fit();
                    }
                }
            }
            Instructions::Reparse { text, summary } => {
                // Read and typed as the first time (which reported every
                // error and warning: these warnings are dropped), one
                // instruction at a time, each dropped once lowered: the
                // stage's typed instructions are never held together.
                let reread = |span: Span| {
                    Error::new(ErrorKind::Reread, span)
                        .with_hint("this is a bug in strata: please report it")
                };
                let mut parser = crate::parser::Parser::resume(
                    text,
                    summary.body.clone(),
                    summary.line,
                    escape,
                )?;
                let (mut position, mut steps) = (0, 0);
                while let Some(mut node) = parser.next_node()? {
                    let original = std::mem::take(&mut node.original);
                    let instruction = instructions::parse_node(&node, &mut Vec::new())?;
                    if matches!(instruction, Instruction::From(_)) {
                        return Err(reread(node.span));
                    }
                    let located = Located {
                        instruction,
                        span: node.span,
                        original,
                        lines: (node.start_line, node.end_line),
                    };
                    drop(node);
                    steps += usize::from(located.instruction.is_step());
                    dispatch(position, &located)?;
                    position += 1;
                }
                if position != summary.instructions || steps != summary.steps {
                    let end = summary.body.end;
                    return Err(reread(Span::new(end, end)));
                }
            }
            Instructions::Taken => {}
        }
        self.infos[index].built = true;
        self.infos[index].rootfs = Some(state.fs);
        self.infos[index].last = Some(state.last);
        self.status[index] = StageStatus::Done(Box::new(state.clone()));
        Ok(state)
    }

    /// Run the ONBUILD triggers of a base image at the start of a stage.
    pub(super) fn onbuild_triggers(
        &mut self,
        triggers: &[String],
        index: usize,
        state: &mut State,
        span: Span,
        origin: Option<Origin>,
    ) -> Result<(), Error> {
        for trigger in triggers {
            let in_trigger = |error: Error| Error {
                kind: error.kind,
                span: Some(span),
                hint: Some(format!("in the base image's ONBUILD trigger `{trigger}`")),
            };
            let file = crate::parser::parse(trigger).map_err(in_trigger)?;
            for node in &file.nodes {
                let mut warnings = Vec::new();
                let instruction =
                    instructions::parse_node(node, &mut warnings).map_err(in_trigger)?;
                if matches!(instruction, Instruction::From(_) | Instruction::Onbuild(_)) {
                    return Err(Error::new(
                        ErrorKind::ForbiddenTrigger(instruction.name().to_owned()),
                        span,
                    ));
                }
                let located = Located {
                    instruction: instruction.clone(),
                    span,
                    original: trigger.clone(),
                    lines: origin
                        .map(|origin| (origin.line, origin.end_line))
                        .unwrap_or((0, 0)),
                };
                let step = Step {
                    stage: index,
                    number: 1,
                    total: 1,
                    located: &located,
                };
                // Spans inside the trigger refer to its own text: point at FROM.
                self.dispatch(&step, &instruction, state)
                    .map_err(in_trigger)?;
            }
        }
        Ok(())
    }

    /// Resolve `--from=` (COPY) or `from=` (RUN --mount) to a filesystem.
    pub(super) fn resolve_from(
        &mut self,
        from: &str,
        flag: &FlagValue,
        step: &Step<'_>,
        copying: bool,
    ) -> Result<VertexId, Error> {
        let current = step.stage;
        let lowered = from.to_ascii_lowercase();
        let by_name = self.names.get(&lowered).copied();
        let by_index = if !from.is_empty() && from.bytes().all(|byte| byte.is_ascii_digit()) {
            match from
                .parse::<usize>()
                .ok()
                .filter(|index| *index < self.infos.len())
            {
                Some(index) => Some(index),
                None => {
                    return Err(Error::new(
                        ErrorKind::UnknownStage(from.to_owned()),
                        flag.value.span,
                    )
                    .with_hint(format!("the stages are {}", self.stage_list())));
                }
            }
        } else {
            None
        };
        if let Some(index) = by_name.or(by_index) {
            // BuildKit dispatches stages in order and copies only from one
            // already dispatched; a mount may name any stage.
            if copying && index > current {
                return Err(Error::new(
                    ErrorKind::StageNotYetDefined {
                        from: from.to_owned(),
                        current: self.infos[current].label(),
                    },
                    flag.value.span,
                )
                .with_hint("move the stage it copies from above this one"));
            }
            if index == current {
                return Err(Error::new(
                    ErrorKind::CircularDependency(self.infos[index].label()),
                    flag.value.span,
                ));
            }
            return Ok(self.lower_stage(index, flag.value.span)?.fs);
        }
        // Not a stage: a named context, or an image.
        let named = self.named_image(from);
        match named {
            Some((_, NamedContext::Image(_))) | None => {}
            // Read in place: a COPY or a bind mount reads the directory
            // itself, with its `.dockerignore`, as it reads the build
            // context.
            Some((name, NamedContext::Directory)) => {
                return Ok(self.named_context_vertex(name, current));
            }
            Some((name, context @ NamedContext::Url(_))) => {
                return self.named_base(
                    name,
                    context,
                    current,
                    Some(step.origin()),
                    flag.value.span,
                );
            }
        }
        // A near-miss of a stage name with no registry, tag or digest is
        // far likelier a typo than an image of that name, so it is an error
        // instead of a pull that fails later.
        let names: Vec<&str> = self
            .infos
            .iter()
            .filter_map(|info| info.name.as_deref())
            .collect();
        if named.is_none()
            && !from.contains(['/', ':', '@', '.'])
            && let Some(near) = instructions::suggest(&lowered, &names)
        {
            return Err(
                Error::new(ErrorKind::UnknownStage(from.to_owned()), flag.value.span).with_hint(
                    format!(
                        "did you mean stage `{near}`? the stages are {}",
                        self.stage_list()
                    ),
                ),
            );
        }
        let platform = self.target_platform.clone();
        let from = match named {
            Some((_, NamedContext::Image(image))) => image.clone(),
            _ => from.to_owned(),
        };
        let (vertex, _) = self.image_vertex(
            &from,
            &platform,
            current,
            Some(step.origin()),
            flag.value.span,
        )?;
        Ok(vertex)
    }
}
