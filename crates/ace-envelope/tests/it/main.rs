//! Integration tests of ace-envelope.
