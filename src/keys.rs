//! Canonical trial keys. Placeholder until the runner issue lands.
