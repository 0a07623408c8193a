//! Pure decisions for urunc-rs (filled in by the runtime-core work).
