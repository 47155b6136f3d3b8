//! The runtime's integration tests in one binary: one build and one link per feature
//! combination instead of one per file. The tests that observe the whole process (its
//! resident memory, its thread count, its tracing callsites, whose interest tracing
//! caches process-wide) or load every core (the stress run) keep binaries of their
//! own, so nothing else runs beside them.

mod bad_input;
mod batch;
mod batch_tier;
mod cache;
mod eviction;
mod freshness;
mod rules;
mod stats_format;
