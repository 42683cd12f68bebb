//! Talking to NCP: request signing, regions, and the CDSS calls.

pub mod cdss;
pub mod region;
pub mod sign;
