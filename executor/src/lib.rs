//! baton-executor (under construction).
