//! HTTP/1.1 as roomgate speaks it itself: to services on its own exchange (see
//! `pool::exchange`: the request head it writes, the response head it reads, chunked
//! bodies), and to clients for the requests it serves without hyper (see `server::direct`).
//! Pure functions over bytes; the I/O is the pool's and the server's.

pub mod chunked;
pub mod head;
pub mod server;
