//! The rampart policy language (issue 3).
