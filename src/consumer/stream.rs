//! Records as a [`futures_core::Stream`]: [`Consumer::stream`] and [`GroupConsumer::stream`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::group::{GroupConsumer, GroupError};
use super::{Consumer, ConsumerError, ConsumerRecord};

type Next<'a, E> = Pin<Box<dyn Future<Output = Result<ConsumerRecord, E>> + Send + 'a>>;

/// A consumer's `recv` as a stream; it ends when the consumer is closed.
pub struct RecvStream<'a, E> {
    recv: Box<dyn Fn() -> Next<'a, E> + Send + Sync + 'a>,
    is_closed: fn(&E) -> bool,
    next: Option<Next<'a, E>>,
}

/// The records of a [`Consumer`] as a stream.
pub type RecordStream<'a> = RecvStream<'a, ConsumerError>;

/// The records of a [`GroupConsumer`] as a stream.
pub type GroupRecordStream<'a> = RecvStream<'a, GroupError>;

impl<E> std::fmt::Debug for RecvStream<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecvStream")
    }
}

impl Consumer {
    /// The records (and partition errors) as a [`Stream`], in the order
    /// [`recv`](Self::recv) gives them. Dropping the stream loses nothing (`recv` is cancel safe).
    pub fn stream(&self) -> RecordStream<'_> {
        RecvStream {
            recv: Box::new(move || Box::pin(self.recv())),
            is_closed: |e| matches!(e, ConsumerError::Closed),
            next: None,
        }
    }
}

impl GroupConsumer {
    /// The records (and errors) as a [`Stream`], in the order [`recv`](Self::recv) gives them.
    /// Time spent waiting on the stream counts as polling for `max.poll.interval.ms`.
    pub fn stream(&self) -> GroupRecordStream<'_> {
        RecvStream {
            recv: Box::new(move || Box::pin(self.recv())),
            is_closed: |e| {
                matches!(
                    e,
                    GroupError::Closed | GroupError::Consumer(ConsumerError::Closed)
                )
            },
            next: None,
        }
    }
}

impl<E> Stream for RecvStream<'_, E> {
    type Item = Result<ConsumerRecord, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.next.get_or_insert_with(|| (this.recv)());
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.next = None;
                match r {
                    Err(e) if (this.is_closed)(&e) => Poll::Ready(None),
                    r => Poll::Ready(Some(r)),
                }
            }
        }
    }
}
