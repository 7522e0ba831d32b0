//! xorshift64*: enough randomness for kill moments and sizes in the crash
//! tests, reproducible from a printed seed.

/// A generator seeded by the test (print the seed, so a failure can be
/// replayed).
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
