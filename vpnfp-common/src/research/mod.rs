//! The research's rule, bit for bit ("paper mode"): the per-host window state
//! machine (step 2) and the decision at a window close (step 3). Step 1, the
//! orientation, is `net::classify`.

pub mod decision;
pub mod window;
