//! [`NodeContext`]: what every actor of a node needs to know about the node itself.

use crate::chain::{genesis, BlockHash, ValidationRules};
use crate::metrics::NodeMetrics;
use crate::record::NodeIdentity;

use super::NodeConfig;

/// The node's identity and configuration, shared (in an `Arc`) by its actors.
pub struct NodeContext {
    pub identity: NodeIdentity,
    pub config: NodeConfig,
    /// The address other nodes dial (see [`NodeConfig::advertised`]).
    pub advertised: String,
    pub genesis: BlockHash,
    /// Counters served on the HTTP side port's `/metrics`.
    pub metrics: NodeMetrics,
}

impl NodeContext {
    pub fn new(identity: NodeIdentity, config: NodeConfig) -> Self {
        Self {
            advertised: config.advertised(),
            genesis: genesis(&config.network_id).hash,
            metrics: NodeMetrics::new(),
            identity,
            config,
        }
    }

    pub fn rules(&self) -> ValidationRules {
        ValidationRules {
            difficulty: self.config.difficulty,
        }
    }
}
