//! HTTP/1.1 as roomgate speaks it to services on its own exchange (see `pool::exchange`):
//! the request head it writes, the response head it reads, and chunked bodies. Pure
//! functions over bytes; the I/O is the pool's.

pub mod chunked;
pub mod head;
