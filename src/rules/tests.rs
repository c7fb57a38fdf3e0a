//! Tests of rule loading.
