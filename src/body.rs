//! Bodies: the one body type roomgate sends and forwards, and the one wrapper through
//! which the connection layer follows a body it passes on.
//!
//! [`Watched`] lets a body's carrier see each frame go by (an upload moving its response
//! deadline ahead) and hold something for exactly as long as the body lives (a response
//! keeping its request counted in flight). It never looks inside a frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// The body type roomgate sends and forwards.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BodyError>;

/// An error while streaming a body. A concrete type (rather than a boxed trait object)
/// so that hyper's `Into<Box<dyn Error>>` bounds hold for every lifetime.
#[derive(Debug)]
pub struct BodyError(Box<dyn std::error::Error + Send + Sync>);

impl BodyError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BodyError(e.into())
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// A body made of bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body of no bytes (no allocation: its box holds nothing).
pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// What a [`Watched`] body tells as its frames go by; dropped with the body.
pub trait Watcher: Send + Sync + Unpin + 'static {
    /// A frame (or the end, or an error) was taken from the body.
    fn on_frame(&mut self) {}
}

/// A body passed on unchanged, with a [`Watcher`] beside it.
pub struct Watched<W> {
    body: Body,
    watcher: W,
}

impl<W: Watcher> Watched<W> {
    pub fn new(body: Body, watcher: W) -> Self {
        Watched { body, watcher }
    }
}

impl<W: Watcher> http_body::Body for Watched<W> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_ready() {
            this.watcher.on_frame();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>);

    impl Watcher for Count {
        fn on_frame(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(100, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn a_watched_body_passes_its_bytes_unchanged_and_drops_its_watcher_with_itself() {
        let seen = Arc::new(AtomicUsize::new(0));
        let body = Watched::new(full("hello"), Count(Arc::clone(&seen)));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        // One data frame and the end were taken; then the body (and watcher) dropped.
        assert_eq!(seen.load(Ordering::Relaxed), 102);
    }
}
