//! pier-client
