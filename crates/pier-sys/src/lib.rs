//! pier-sys
