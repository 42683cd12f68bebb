//! Talking to NCP: request signing, regions, and the CDSS calls.

pub mod cdss;
pub mod cluster_list;
pub mod region;
pub mod sign;
