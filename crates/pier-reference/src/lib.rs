//! pier-reference
