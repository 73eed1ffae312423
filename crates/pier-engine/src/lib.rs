//! pier-engine
