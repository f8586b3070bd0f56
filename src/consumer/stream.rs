//! Records as a [`futures_core::Stream`]: [`Consumer::stream`] and [`GroupConsumer::stream`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::group::{GroupConsumer, GroupError};
use super::{Consumer, ConsumerError, ConsumerRecord};

type Next<'a, E> = Pin<Box<dyn Future<Output = Result<ConsumerRecord, E>> + Send + 'a>>;

/// The records of a [`Consumer`] as a stream; it ends when the consumer is closed.
pub struct RecordStream<'a> {
    consumer: &'a Consumer,
    next: Option<Next<'a, ConsumerError>>,
}

/// The records of a [`GroupConsumer`] as a stream; it ends when the consumer is closed.
pub struct GroupRecordStream<'a> {
    consumer: &'a GroupConsumer,
    next: Option<Next<'a, GroupError>>,
}

impl std::fmt::Debug for RecordStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordStream")
    }
}

impl std::fmt::Debug for GroupRecordStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupRecordStream")
    }
}

impl Consumer {
    /// The records (and partition errors) as a [`Stream`], in the order
    /// [`recv`](Self::recv) gives them. Dropping the stream loses nothing (`recv` is cancel safe).
    pub fn stream(&self) -> RecordStream<'_> {
        RecordStream {
            consumer: self,
            next: None,
        }
    }
}

impl GroupConsumer {
    /// The records (and errors) as a [`Stream`], in the order [`recv`](Self::recv) gives them.
    /// Time spent waiting on the stream counts as polling for `max.poll.interval.ms`.
    pub fn stream(&self) -> GroupRecordStream<'_> {
        GroupRecordStream {
            consumer: self,
            next: None,
        }
    }
}

impl Stream for RecordStream<'_> {
    type Item = Result<ConsumerRecord, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let consumer = this.consumer;
        let next = this.next.get_or_insert_with(|| Box::pin(consumer.recv()));
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.next = None;
                match r {
                    Err(ConsumerError::Closed) => Poll::Ready(None),
                    r => Poll::Ready(Some(r)),
                }
            }
        }
    }
}

impl Stream for GroupRecordStream<'_> {
    type Item = Result<ConsumerRecord, GroupError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let consumer = this.consumer;
        let next = this.next.get_or_insert_with(|| Box::pin(consumer.recv()));
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.next = None;
                match r {
                    Err(GroupError::Closed | GroupError::Consumer(ConsumerError::Closed)) => {
                        Poll::Ready(None)
                    }
                    r => Poll::Ready(Some(r)),
                }
            }
        }
    }
}
