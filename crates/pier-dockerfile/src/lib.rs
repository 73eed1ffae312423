//! pier-dockerfile
