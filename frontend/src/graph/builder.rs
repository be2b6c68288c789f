//! Building a [`BuildGraph`] vertex by vertex: what the Dockerfile lowering
//! does, and what a library user or a test does by hand without a
//! Dockerfile. The builder gives each vertex its id and its digest (see
//! the `graph` module docs) and shares identical vertices.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{BuildGraph, CopySource, FileOp, Op, StageInfo, Vertex, VertexId};

/// A graph under construction. Vertices are added in dependency order:
/// every input (and `previous`) of a vertex must already be there.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    vertices: Vec<Vertex>,
    /// Dedupes vertices: the same op on the same inputs after the same step.
    known: HashMap<([u8; 32], Option<VertexId>), VertexId, DigestHash>,
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
            vertices: Vec::with_capacity(vertices),
            known: HashMap::with_capacity_and_hasher(vertices, DigestHash),
            ..GraphBuilder::default()
        }
    }

    /// The vertices added so far.
    pub fn vertices(&self) -> &[Vertex] {
        &self.vertices
    }

    /// Add `vertex`, whose `id` and `digest` are set here (what it holds
    /// there is ignored); a vertex identical to one already added (same
    /// op, inputs and previous step) is that one.
    ///
    /// # Panics
    ///
    /// If an input or `previous` is not already in the graph: vertices are
    /// added in dependency order.
    pub fn add(&mut self, mut vertex: Vertex) -> VertexId {
        #[derive(serde::Serialize)]
        struct Definition<'d> {
            op: &'d Op,
            inputs: Vec<&'d str>,
            previous: Option<&'d str>,
        }
        let inputs: Vec<&str> = vertex
            .inputs
            .iter()
            .map(|input| self.vertices[*input].digest.as_str())
            .collect();
        // Only config edits depend on the step before them; filesystem ops
        // depend on their inputs alone (see the module docs of `graph`).
        let previous = match vertex.op {
            Op::Config(_) => vertex
                .previous
                .map(|previous| self.vertices[previous].digest.as_str()),
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
        let key = (raw, vertex.previous);
        if let Some(existing) = self.known.get(&key) {
            return *existing;
        }
        vertex.digest = digest_string(&raw);
        let id = self.vertices.len();
        vertex.id = id;
        self.known.insert(key, id);
        self.vertices.push(vertex);
        id
    }

    /// The graph, with its `stages` and the index of the `target` one,
    /// once it is checked to hold together: the target and every stage's
    /// vertices exist, and every source a step names is one of its inputs.
    pub fn finish(self, stages: Vec<StageInfo>, target: usize) -> Result<BuildGraph, GraphError> {
        let count = self.vertices.len();
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
        for vertex in &self.vertices {
            let named: Vec<usize> = match &vertex.op {
                Op::File(FileOp::Copy(copy)) => copy
                    .sources
                    .iter()
                    .filter_map(|source| match source {
                        CopySource::Path { input, .. } => Some(*input),
                        _ => None,
                    })
                    .collect(),
                Op::Exec(exec) => exec.mounts.iter().filter_map(|mount| mount.input).collect(),
                _ => Vec::new(),
            };
            if let Some(input) = named
                .into_iter()
                .find(|input| *input >= vertex.inputs.len())
            {
                return Err(GraphError::NoInput {
                    vertex: vertex.id,
                    input,
                });
            }
        }
        Ok(BuildGraph {
            vertices: self.vertices,
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

/// Hashes a `(digest, previous)` key by the digest's first eight bytes: a
/// SHA-256 output is already uniformly random, so running SipHash over it
/// again (the default) only costs time.
#[derive(Debug, Default, Clone, Copy)]
struct DigestHash;

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Writes come as: the array's length (a constant), the 32 digest
        // bytes (the first eight are used), then the previous step's id.
        let mut word = [0u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }
}

/// `sha256:<hex>` of a raw digest.
fn digest_string(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}
