//! pier-content
