"""Developer tooling: a local Synapse for tests, benchmarks and the embedded default set-up."""
