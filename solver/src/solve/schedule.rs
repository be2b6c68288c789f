//! Which steps of a build graph can run now.
//!
//! A plain state machine, without threads: the driver asks for the steps
//! that are ready, starts them (one at a time or many), and reports each
//! one done. Only the steps the target needs are ever offered, each once.

use std::collections::{BTreeSet, VecDeque};

use strata_frontend::graph::{BuildGraph, VertexId};

/// The steps of one build and where they stand.
#[derive(Debug)]
pub struct Scheduler {
    /// For each vertex, how many of its dependencies are not done yet;
    /// `None` for vertices the target does not need.
    waiting: Vec<Option<usize>>,
    /// Who depends on each vertex.
    dependents: Vec<Vec<VertexId>>,
    ready: VecDeque<VertexId>,
    running: BTreeSet<VertexId>,
    left: usize,
}

/// What a vertex waits for: its filesystem inputs and, for config edits
/// and steps with history, the step before it in its stage.
fn dependencies(graph: &BuildGraph, id: VertexId) -> impl Iterator<Item = VertexId> + '_ {
    graph.inputs_of(id).chain(graph.previous_of(id))
}

/// Which vertices building `graph`'s target stage needs: its filesystem
/// and its config chain, and everything they depend on.
pub(crate) fn needed(graph: &BuildGraph) -> Vec<bool> {
    let stage = graph.target_stage();
    let mut needed = vec![false; graph.len()];
    let mut stack: Vec<VertexId> = stage.rootfs.into_iter().chain(stage.last).collect();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut needed[id], true) {
            stack.extend(dependencies(graph, id));
        }
    }
    needed
}

impl Scheduler {
    /// The steps needed to build `graph`'s target stage ([`needed`]).
    pub fn new(graph: &BuildGraph) -> Scheduler {
        let needed = needed(graph);
        let mut waiting = vec![None; graph.len()];
        let mut dependents = vec![Vec::new(); graph.len()];
        let mut ready = VecDeque::new();
        for id in (0..graph.len()).filter(|id| needed[*id]) {
            let deps: BTreeSet<VertexId> = dependencies(graph, id).collect();
            for &dependency in &deps {
                dependents[dependency].push(id);
            }
            waiting[id] = Some(deps.len());
            if deps.is_empty() {
                ready.push_back(id);
            }
        }
        let left = needed.iter().filter(|needed| **needed).count();
        Scheduler {
            waiting,
            dependents,
            ready,
            running: BTreeSet::new(),
            left,
        }
    }

    /// The next step that can start, if any (it counts as running).
    pub fn start_next(&mut self) -> Option<VertexId> {
        let id = self.ready.pop_front()?;
        self.running.insert(id);
        Some(id)
    }

    /// `id` finished: its dependents may be ready now.
    pub fn done(&mut self, id: VertexId) {
        assert!(self.running.remove(&id), "step {id} was not running");
        self.left -= 1;
        for &dependent in &self.dependents[id] {
            let count = self.waiting[dependent]
                .as_mut()
                .expect("dependents are needed");
            *count -= 1;
            if *count == 0 {
                self.ready.push_back(dependent);
            }
        }
    }

    /// Steps running now.
    pub fn running(&self) -> &BTreeSet<VertexId> {
        &self.running
    }

    /// Whether every needed step is done.
    pub fn finished(&self) -> bool {
        self.left == 0
    }

    /// Whether the build needs `id` at all.
    pub fn needs(&self, id: VertexId) -> bool {
        self.waiting[id].is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(dockerfile: &str, target: Option<&str>) -> BuildGraph {
        let options = strata_frontend::graph::Options {
            target: target.map(str::to_owned),
            ..Default::default()
        };
        strata_frontend::compile(dockerfile, &options)
            .expect("the Dockerfile compiles")
            .graph
    }

    fn describe(graph: &BuildGraph, id: VertexId) -> String {
        graph.vertex(id).description()
    }

    #[test]
    fn independent_stages_are_ready_together_and_unneeded_ones_never() {
        let graph = graph(
            "FROM busybox AS a\nRUN echo a > /a\n\
             FROM busybox AS b\nRUN echo b > /b\n\
             FROM busybox AS unused\nRUN echo never\n\
             FROM a\nRUN echo last\n",
            None,
        );
        let mut scheduler = Scheduler::new(&graph);
        // Identical sources are one vertex: busybox once.
        let first = scheduler.start_next().unwrap();
        assert!(
            describe(&graph, first).contains("busybox"),
            "{}",
            describe(&graph, first)
        );
        assert_eq!(scheduler.start_next(), None, "nothing else before the base");
        scheduler.done(first);
        let mut wave = Vec::new();
        while let Some(id) = scheduler.start_next() {
            wave.push(describe(&graph, id));
        }
        assert!(wave.iter().any(|step| step.contains("echo a")), "{wave:?}");
        assert!(!wave.iter().any(|step| step.contains("never")), "{wave:?}");
        assert!(
            !wave.iter().any(|step| step.contains("echo b")),
            "b is not needed: {wave:?}"
        );
        let running: Vec<VertexId> = scheduler.running().iter().copied().collect();
        for id in running {
            scheduler.done(id);
        }
        while !scheduler.finished() {
            let id = scheduler
                .start_next()
                .expect("a step is ready while the build is unfinished");
            scheduler.done(id);
        }
        let unused = graph
            .vertices()
            .find(|vertex| vertex.description().contains("never"));
        if let Some(unused) = unused {
            assert!(!scheduler.needs(unused.id));
        }
    }

    #[test]
    fn two_stages_that_the_target_copies_from_run_side_by_side() {
        let graph = graph(
            "FROM busybox AS a\nRUN sleep 1 && echo a\n\
             FROM busybox AS b\nRUN sleep 1 && echo b\n\
             FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n",
            None,
        );
        let mut scheduler = Scheduler::new(&graph);
        let base = scheduler.start_next().unwrap();
        scheduler.done(base);
        let mut sleeps = Vec::new();
        while let Some(id) = scheduler.start_next() {
            if describe(&graph, id).contains("sleep") {
                sleeps.push(id);
            }
        }
        assert_eq!(sleeps.len(), 2, "both sleeps are ready at once");
    }

    #[test]
    fn identical_steps_of_two_stages_are_one_step() {
        let graph = graph(
            "FROM busybox AS a\nRUN make\n\
             FROM busybox AS b\nRUN make\n\
             FROM busybox\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n",
            None,
        );
        let mut scheduler = Scheduler::new(&graph);
        let mut makes = 0;
        while !scheduler.finished() {
            let id = scheduler.start_next().expect("a step is ready");
            if describe(&graph, id).contains("RUN make") {
                makes += 1;
            }
            scheduler.done(id);
        }
        assert_eq!(makes, 1);
    }
}
