//! pier-metadata
