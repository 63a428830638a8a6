//! The grid engine: lazy, exact, indexable cartesian grids over a parameters tree.
//!
//! `spec` parses the tree, `axis` holds each parameter's values, `constrained` is the index space
//! of one tree (with or without constraints), `order` maps views onto it, `columns` fills typed
//! columns. `Grid` ties them together: a union of trees, each with its own index space.

pub mod axis;
pub mod columns;
pub mod constrained;
pub mod order;
pub mod rules;
pub mod spec;

mod union;

pub use self::union::{Grid, Part};
