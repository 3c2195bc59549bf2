//! baton-bridge (under construction).
