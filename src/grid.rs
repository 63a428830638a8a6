//! The grid engine (see the grid-engine issue). Placeholder until it lands.
