//! Talking to NCP. A call flows top to bottom through these modules:
//!
//! - [`precheck`], [`cluster_list`], [`cluster_status`], [`restart`]: what each operation sends,
//!   and how its `result` is read;
//! - [`client`]: the one call path (the account's keys, signing, sending, the body cap, the
//!   timeout, the reply's headers);
//! - [`sign`]: signature v2, a pure function;
//! - [`envelope`]: what every answer's envelope says (gateway errors, CDSS codes), pure;
//! - [`region`]: where each region's API lives (at the bottom, beside `model`);
//! - [`usage`]: every call counted, by account, operation and result.

pub mod client;
pub mod cluster_list;
pub(crate) mod cluster_status;
pub(crate) mod envelope;
pub mod precheck;
pub mod region;
pub(crate) mod restart;
pub mod sign;
pub(crate) mod usage;

#[cfg(test)]
mod tests;
