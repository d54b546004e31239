//! The C ABI of hotplex (placeholder).
