//! Seeded Splatter-style gamma–Poisson count simulator.
