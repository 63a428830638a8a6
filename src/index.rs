//! The indexed results directory (see the results-index issue). Placeholder until it lands.
