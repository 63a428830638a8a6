//! Isolated deep merge of config trees. Placeholder until the runner issue lands.
