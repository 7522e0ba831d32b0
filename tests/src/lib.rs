//! Behaviour tests of dactor-persist live in `tests/`.
