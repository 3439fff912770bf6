//! Web hosting: nodes and their agents, sites, and the domains that point at them.

pub(crate) mod agents;
pub(crate) mod domains;
pub(crate) mod nodes;
pub(crate) mod sites;
