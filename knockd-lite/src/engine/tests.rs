//! Unit tests of engine internals; behaviour is tested by replay in tests/engine_replay.rs.
