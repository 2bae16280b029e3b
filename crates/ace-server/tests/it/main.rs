//! End-to-end tests of the server over real sockets.
