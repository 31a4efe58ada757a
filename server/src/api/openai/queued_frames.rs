//! The body of an event stream: frames queued by the task producing them. The data frames
//! already waiting when the connection asks for more leave as one, so a reply whose
//! pieces arrive together costs one write to the client rather than one per piece.
//! Nothing is held back to wait for more: a lone frame leaves at once.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

/// Where the producer queues frames.
pub(super) type FrameQueue = mpsc::Sender<Frame<Bytes>>;

/// A body reading the frames of a [`FrameQueue`].
pub(super) struct QueuedFrames {
    queue: mpsc::Receiver<Frame<Bytes>>,
    /// A trailers frame read behind data that had to leave first.
    held: Option<Frame<Bytes>>,
}

impl QueuedFrames {
    /// A queue holding up to `capacity` frames, and the body reading it.
    pub(super) fn channel(capacity: usize) -> (FrameQueue, Self) {
        let (sender, queue) = mpsc::channel(capacity);
        (sender, Self { queue, held: None })
    }
}

impl http_body::Body for QueuedFrames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(frame) = self.held.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let mut data: Option<Vec<u8>> = None;
        let gathered = |data: Option<Vec<u8>>| data.map(|d| Ok(Frame::data(Bytes::from(d))));
        loop {
            match self.queue.poll_recv(cx) {
                Poll::Ready(Some(frame)) => match frame.into_data() {
                    Ok(bytes) => data.get_or_insert_default().extend_from_slice(&bytes),
                    Err(other) if data.is_some() => {
                        self.held = Some(other);
                        return Poll::Ready(gathered(data));
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Poll::Ready(None) => return Poll::Ready(gathered(data)),
                Poll::Pending if data.is_some() => return Poll::Ready(gathered(data)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http_body_util::BodyExt;

    use super::*;

    fn data(frame: &Frame<Bytes>) -> Option<&[u8]> {
        frame.data_ref().map(|b| b.as_ref())
    }

    #[tokio::test]
    async fn waiting_data_leaves_together_and_trailers_stay_last() {
        let (queue, mut body) = QueuedFrames::channel(8);
        for piece in ["data: a\n\n", "data: b\n\n", "data: c\n\n"] {
            queue.send(Frame::data(Bytes::from(piece))).await.unwrap();
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", 0.into());
        queue.send(Frame::trailers(trailers.clone())).await.unwrap();
        drop(queue);

        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(
            data(&first),
            Some(&b"data: a\n\ndata: b\n\ndata: c\n\n"[..])
        );
        let last = body.frame().await.unwrap().unwrap();
        assert_eq!(last.trailers_ref(), Some(&trailers));
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_lone_frame_leaves_without_waiting_for_more() {
        let (queue, mut body) = QueuedFrames::channel(8);
        queue.send(Frame::data(Bytes::from("one"))).await.unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(data(&first), Some(&b"one"[..]));
        queue.send(Frame::data(Bytes::from("two"))).await.unwrap();
        let second = body.frame().await.unwrap().unwrap();
        assert_eq!(data(&second), Some(&b"two"[..]));
        drop(queue);
        assert!(body.frame().await.is_none());
    }
}
