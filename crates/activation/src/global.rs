//! [`Global`]: a process-wide state (the layer behind the Python-style module functions).

use std::sync::{LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A process-wide value, made on first use; a poisoned lock is recovered (the state is a set of
/// clients, valid after any panic of a caller).
pub struct Global<T>(LazyLock<RwLock<T>>);

impl<T: Default> Global<T> {
    /// A value made with `T::default()` on first use (for a `static`).
    pub const fn new() -> Self {
        Global(LazyLock::new(RwLock::default))
    }
}

impl<T: Default> Default for Global<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Global<T> {
    /// The lock itself.
    pub fn lock(&self) -> &RwLock<T> {
        &self.0
    }

    /// Reads it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes it.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}
