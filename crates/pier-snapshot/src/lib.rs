//! pier-snapshot
