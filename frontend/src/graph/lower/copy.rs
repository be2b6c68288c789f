//! COPY and ADD: sources (paths, URLs, heredocs), the destination and the
//! flags (BuildKit's `dispatchCopy` and `convert_copy.go`).

use super::{Lowerer, Scope, State, Step, heredoc_content, join_path};
use crate::error::{Error, ErrorKind};
use crate::expand::Lexer;
use crate::graph::{CopySource, FileCopy, FileOp, InlineFile, Op};
use crate::instructions::Copy;

impl Lowerer<'_> {
    pub(super) fn copy(
        &mut self,
        step: &Step<'_>,
        copy: &Copy,
        state: &mut State,
    ) -> Result<(), Error> {
        let instruction = if copy.add { "ADD" } else { "COPY" };
        let mut inputs = vec![state.fs];
        let mut sources = Vec::new();
        let mut path_input: Option<usize> = None;
        let mut from_input = |lowerer: &mut Self| -> Result<usize, Error> {
            if let Some(index) = path_input {
                return Ok(index);
            }
            let vertex = match &copy.from {
                Some(flag) => {
                    // BuildKit expands `--from` with no variables set and
                    // refuses it when that changes anything (a variable, or
                    // quotes): the stage a COPY reads is known before the
                    // build arguments are.
                    let lexer = Lexer::new(lowerer.escape);
                    let bare = lexer
                        .expand_word(&flag.value.value, &std::collections::BTreeMap::new())
                        .map_err(|error| Error::new(ErrorKind::Expand(error), flag.value.span))?;
                    if bare != flag.value.value {
                        return Err(Error::new(ErrorKind::FromVariable, flag.value.span)
                            .with_hint("define a stage with `FROM ${VAR} AS name` (ARG before the first FROM) and use `--from=name`"));
                    }
                    lowerer.resolve_from(&bare, flag, step, true)?
                }
                None => lowerer.context_vertex(),
            };
            inputs.push(vertex);
            path_input = Some(inputs.len() - 1);
            Ok(inputs.len() - 1)
        };
        let mut has_url = false;
        for word in &copy.sources {
            if let Some(heredoc) = copy
                .heredocs
                .iter()
                .find(|heredoc| is_heredoc_word(&word.value, &heredoc.name))
            {
                let mut content = heredoc_content(heredoc);
                if heredoc.expand {
                    let lexer = Lexer {
                        skip_quotes: true,
                        ..Lexer::new(self.escape)
                    };
                    // Checked as BuildKit's ExpandRaw checks it.
                    let expansion = lexer
                        .expand(&content, &Scope { state })
                        .map_err(|error| Error::new(ErrorKind::Expand(error), heredoc.span))?;
                    self.report_unmatched(&expansion.unmatched, state);
                    content = expansion.result;
                }
                sources.push(CopySource::Inline(InlineFile {
                    path: heredoc.name.clone(),
                    content,
                    mode: 0o644,
                }));
                continue;
            }
            let path = self.expand_in(word, state)?;
            match super::super::git::parse(&path) {
                super::super::git::Parsed::NotGit => {}
                _ if !copy.add => {
                    return Err(Error::new(
                        ErrorKind::Unsupported("source can't be a git ref for COPY"),
                        word.span,
                    ));
                }
                super::super::git::Parsed::Invalid(message) => {
                    return Err(Error::new(ErrorKind::GitSource(message), word.span));
                }
                super::super::git::Parsed::Git(mut source, keep) => {
                    if copy.from.is_some() {
                        return Err(Error::new(
                            ErrorKind::Unsupported("ADD of a URL cannot be combined with --from"),
                            word.span,
                        ));
                    }
                    // The flag and the query must agree (BuildKit); an
                    // unset flag is false here, so only a flag set to
                    // true can disagree with the query.
                    if copy.keep_git_dir && keep == Some(false) {
                        return Err(Error::new(
                            ErrorKind::Unsupported("inconsistent keep-git-dir configuration"),
                            word.span,
                        ));
                    }
                    source.keep_git_dir = keep.unwrap_or(copy.keep_git_dir);
                    if let Some(flag) = &copy.checksum {
                        let flag = self.expand_in(&flag.value, state)?;
                        if let Some(query) = &source.checksum
                            && *query != flag
                        {
                            return Err(Error::new(
                                ErrorKind::GitSource(format!(
                                    "checksum mismatch {query:?} != {flag:?}"
                                )),
                                word.span,
                            ));
                        }
                        source.checksum = Some(flag);
                    }
                    has_url = true;
                    sources.push(CopySource::Git(source));
                    continue;
                }
            }
            if copy.add && (path.starts_with("http://") || path.starts_with("https://")) {
                if copy.from.is_some() {
                    return Err(Error::new(
                        ErrorKind::Unsupported("ADD of a URL cannot be combined with --from"),
                        word.span,
                    ));
                }
                has_url = true;
                sources.push(CopySource::Url { url: path });
                continue;
            }
            if copy.from.is_none()
                && let Some(ignored) = self.options.ignored
                && ignored(&path)
            {
                let instruction = if copy.add { "Add" } else { "Copy" };
                self.warn_once(
                    "CopyIgnoredFile",
                    path.clone(),
                    crate::lint::copy_ignored_file(instruction, &clean_source(&path)),
                    step.located.span,
                );
            }
            let input = from_input(self)?;
            sources.push(CopySource::Path { input, path });
        }
        if let Some(checksum) = &copy.checksum
            && !has_url
        {
            return Err(Error::new(
                ErrorKind::Unsupported("checksum requires HTTP(S) or Git sources"),
                checksum.span,
            ));
        }
        let destination_text = self.expand_in(&copy.destination, state)?;
        let destination = if destination_text.starts_with('/') {
            destination_text.clone()
        } else {
            let mut joined = join_path(&state.workdir, &destination_text);
            // An empty destination (`COPY f $empty`) is the working
            // directory, as `.` is (BuildKit's pathRelativeToWorkingDir).
            let wants_dir = destination_text.ends_with('/')
                || destination_text.is_empty()
                || destination_text == "."
                || destination_text.ends_with("/.");
            if wants_dir && !joined.ends_with('/') {
                joined.push('/');
            }
            joined
        };
        let chown = match &copy.chown {
            Some(flag) => Some(self.expand_in(&flag.value, state)?),
            None => None,
        };
        let chmod = match &copy.chmod {
            Some(flag) => {
                let value = self.expand_in(&flag.value, state)?;
                if !is_valid_chmod(&value) {
                    return Err(Error::new(ErrorKind::InvalidChmod(value), flag.value.span)
                        .with_hint("use octal (`0755`) or symbolic (`u+x,go=r`) modes"));
                }
                Some(value)
            }
            None => None,
        };
        let mut exclude = Vec::new();
        for flag in &copy.exclude {
            exclude.push(self.expand_quietly_in(&flag.value, state)?);
        }
        let checksum = match &copy.checksum {
            // A git source holds its checksum, which is not part of the
            // step's definition: the commit it checks is in the key already,
            // and BuildKit's cache is the same with or without it.
            _ if sources
                .iter()
                .any(|source| matches!(source, CopySource::Git(_))) =>
            {
                None
            }
            Some(flag) => Some(self.expand_in(&flag.value, state)?),
            None => None,
        };
        let shown_sources: Vec<String> = sources
            .iter()
            .map(|source| match source {
                CopySource::Path { path, .. } => path.clone(),
                CopySource::Url { url } => url.clone(),
                CopySource::Git(git) => git.url.clone(),
                CopySource::Inline(file) => format!("<<{}", file.path),
            })
            .collect();
        let created_by = format!(
            "{instruction} {} {destination_text} # buildkit",
            shown_sources.join(" ")
        );
        let file_copy = FileCopy {
            add: copy.add,
            sources,
            destination,
            chown,
            chmod,
            link: copy.link,
            exclude,
            parents: copy.parents,
            checksum,
            keep_git_dir: copy.keep_git_dir,
            unpack: copy.unpack,
        };
        self.step_vertex(
            step,
            state,
            Op::File(FileOp::Copy(Box::new(file_copy))),
            inputs,
            Some(created_by),
        );
        Ok(())
    }
}

/// Octal up to 07777, or symbolic clauses like `u+x,go-w,a=rX`.
fn is_valid_chmod(mode: &str) -> bool {
    if !mode.is_empty() && mode.bytes().all(|byte| (b'0'..=b'7').contains(&byte)) {
        return u32::from_str_radix(mode, 8).is_ok_and(|mode| mode <= 0o7777);
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let who_end = clause
                .find(|ch| !matches!(ch, 'u' | 'g' | 'o' | 'a'))
                .unwrap_or(clause.len());
            let rest = &clause[who_end..];
            !rest.is_empty()
                && rest.starts_with(['+', '-', '='])
                && rest
                    .chars()
                    .all(|ch| matches!(ch, '+' | '-' | '=' | 'r' | 'w' | 'x' | 'X' | 's' | 't'))
        })
}

/// Whether a COPY source word names heredoc `name` (`<<EOF`, `<<-'EOF'`...).
fn is_heredoc_word(word: &str, name: &str) -> bool {
    let Some(rest) = word
        .trim_start_matches(|ch: char| ch.is_ascii_digit())
        .strip_prefix("<<")
    else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    rest.chars()
        .filter(|ch| *ch != '\'' && *ch != '"')
        .collect::<String>()
        == name
}

/// Go's `filepath.Clean` of a COPY source, as CopyIgnoredFile names it.
fn clean_source(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert!(is_valid_chmod("0755") && is_valid_chmod("u+x,go=r") && is_valid_chmod("a-w"));
        assert!(!is_valid_chmod("999") && !is_valid_chmod("u+q") && !is_valid_chmod("x"));
    }
}
