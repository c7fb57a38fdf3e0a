//! Tests of target checks and matching.
