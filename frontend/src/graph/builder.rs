//! Building a [`BuildGraph`] vertex by vertex: what the Dockerfile lowering
//! does, and what a library user or a test does by hand without a
//! Dockerfile. The builder gives each vertex its id and its digest (see
//! the `graph` module docs) and shares identical vertices.

use sha2::{Digest, Sha256};

use super::store::Store;
use super::{BuildGraph, Op, StageInfo, Vertex, VertexId};

/// A graph under construction. Vertices are added in dependency order:
/// every input (and `previous`) of a vertex must already be there.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    store: Store,
    /// Dedupes vertices: the same op on the same inputs after the same
    /// step. It holds vertex ids, 4 bytes a slot, and finds the digest and
    /// previous step to compare in the store. (`hashbrown`'s `HashTable`,
    /// the table under std's `HashMap`, is made for this: a map keyed by
    /// `(digest, previous)` would hold 48 more bytes per vertex, the
    /// digest twice.)
    known: hashbrown::HashTable<u32>,
    /// Reused buffer for the canonical encoding of each vertex.
    encoding: Vec<u8>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// An empty graph with room for `vertices`: neither the list nor the
    /// table that shares identical vertices grows (and is copied, both
    /// sizes held meanwhile) before that many.
    pub fn with_capacity(vertices: usize) -> GraphBuilder {
        GraphBuilder {
            store: Store::with_capacity(vertices),
            known: hashbrown::HashTable::with_capacity(vertices),
            ..GraphBuilder::default()
        }
    }

    /// How many vertices are in.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Vertex `id`, as added (with its id and digest set).
    ///
    /// # Panics
    ///
    /// If there is no such vertex.
    pub fn vertex(&self, id: VertexId) -> Vertex {
        self.store.vertex(id)
    }

    /// Add `vertex`, whose `id` and `digest` are set here (what it holds
    /// there is ignored); a vertex identical to one already added (same
    /// op, inputs and previous step) is that one.
    ///
    /// # Panics
    ///
    /// If an input or `previous` is not already in the graph: vertices are
    /// added in dependency order.
    pub fn add(&mut self, vertex: Vertex) -> VertexId {
        #[derive(serde::Serialize)]
        struct Definition<'d> {
            op: &'d Op,
            inputs: Vec<String>,
            previous: Option<String>,
        }
        let store = &self.store;
        let inputs: Vec<String> = vertex
            .inputs
            .iter()
            .map(|input| digest_string(store.digest(*input)))
            .collect();
        // Only config edits depend on the step before them; filesystem ops
        // depend on their inputs alone (see the module docs of `graph`).
        let previous = match vertex.op {
            Op::Config(_) => vertex
                .previous
                .map(|previous| digest_string(store.digest(previous))),
            _ => None,
        };
        let definition = Definition {
            op: &vertex.op,
            inputs,
            previous,
        };
        // Encode into one reused buffer, then hash it in a single call:
        // cheaper than many small hash updates or a fresh buffer per vertex.
        self.encoding.clear();
        super::canonical::encode(&definition, &mut self.encoding)
            .expect("graph types always encode");
        let raw: [u8; 32] = Sha256::digest(&self.encoding).into();
        let hash = key_hash(&raw, vertex.previous);
        let same = |id: &u32| {
            let id = *id as usize;
            store.digest(id) == &raw && store.previous(id) == vertex.previous
        };
        if let Some(existing) = self.known.find(hash, same) {
            return *existing as usize;
        }
        // Debug builds (every test) check that the packed vertex comes
        // back as it went in.
        let expected = cfg!(debug_assertions).then(|| vertex.clone());
        let id = self.store.push(vertex, raw);
        if let Some(mut expected) = expected {
            expected.id = id as usize;
            expected.digest = digest_string(&raw);
            debug_assert_eq!(self.store.vertex(id as usize), expected);
        }
        let store = &self.store;
        self.known.insert_unique(hash, id, |id| {
            let id = *id as usize;
            key_hash(store.digest(id), store.previous(id))
        });
        id as usize
    }

    /// The graph, with its `stages` and the index of the `target` one,
    /// once it is checked to hold together: the target and every stage's
    /// vertices exist, and every source a step names is one of its inputs.
    pub fn finish(
        mut self,
        stages: Vec<StageInfo>,
        target: usize,
    ) -> Result<BuildGraph, GraphError> {
        let count = self.store.len();
        if target >= stages.len() {
            return Err(GraphError::NoTarget {
                target,
                stages: stages.len(),
            });
        }
        for stage in &stages {
            for id in [stage.rootfs, stage.last].into_iter().flatten() {
                if id >= count {
                    return Err(GraphError::NoVertex {
                        stage: stage.label(),
                        id,
                    });
                }
            }
        }
        for vertex in 0..count {
            let inputs = self.store.inputs(vertex).len();
            if let Some(input) = self
                .store
                .named_inputs(vertex)
                .into_iter()
                .find(|input| *input >= inputs)
            {
                return Err(GraphError::NoInput { vertex, input });
            }
        }
        self.store.shrink_to_fit();
        Ok(BuildGraph {
            store: self.store,
            stages,
            target,
            warnings: Vec::new(),
            source_date_epoch: None,
        })
    }
}

/// A graph that does not hold together (one made by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The target is not a stage.
    #[error("the target stage {target} does not exist: the graph has {stages} stages")]
    NoTarget {
        /// The target asked for.
        target: usize,
        /// How many stages there are.
        stages: usize,
    },
    /// A stage names a vertex that is not in the graph.
    #[error("stage {stage} names vertex {id}, which is not in the graph")]
    NoVertex {
        /// The stage.
        stage: String,
        /// The vertex it names.
        id: VertexId,
    },
    /// A step reads an input it does not have.
    #[error("vertex {vertex} reads its input {input}, which it does not have")]
    NoInput {
        /// The step.
        vertex: VertexId,
        /// The input index it names.
        input: usize,
    },
}

/// The table hash of a `(digest, previous)` key: the digest's first eight
/// bytes, mixed with the previous step. A SHA-256 output is already
/// uniformly random, so running SipHash over it again only costs time.
fn key_hash(digest: &[u8; 32], previous: Option<VertexId>) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    let previous = previous.map_or(u64::MAX, |previous| previous as u64);
    u64::from_le_bytes(word) ^ previous.rotate_left(32)
}

/// `sha256:<hex>` of a raw digest.
pub(super) fn digest_string(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}
