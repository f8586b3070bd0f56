//! The registered workflow, type-erased, and the slot a unit's first attempts run in.
//!
//! A no-op or purely computational workflow finishes on its first poll. Boxing its future for
//! that poll (as a plain `Box<dyn Future>` handler must) costs an allocation and a free per
//! record; a [`Slot`] keeps one allocation for the typed future and reuses it, record after
//! record, for as long as each run finishes at once. A run that waits takes the slot with it
//! (then a new one is made for the next record).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{KafkaMessage, WorkflowContext, WorkflowError};

/// A workflow run's future, boxed.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), WorkflowError>> + Send>>;

/// The registered workflow.
pub(crate) type Handler = Arc<dyn Workflow>;

/// A workflow function, type-erased.
pub(crate) trait Workflow: Send + Sync + 'static {
    /// A run, boxed.
    fn call(&self, ctx: WorkflowContext, msg: KafkaMessage) -> HandlerFuture;

    /// An empty slot for runs of this workflow.
    fn slot(self: Arc<Self>) -> Box<dyn Slot>;
}

/// Where runs of one workflow are polled, one at a time, in one reused allocation.
pub(crate) trait Slot: Send {
    /// Begins a run here (dropping the one before, if any) and polls it once.
    fn begin(
        &mut self,
        ctx: WorkflowContext,
        msg: KafkaMessage,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WorkflowError>>;

    /// Polls the run begun last; once it finished, it is dropped and polling again is an error.
    fn resume(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WorkflowError>>;
}

/// A function workflow: `Fn(WorkflowContext, KafkaMessage) -> impl Future<Output = Result<(), E>>`.
pub(crate) struct FnWorkflow<F>(pub(crate) F);

impl<F, Fut, E> Workflow for FnWorkflow<F>
where
    F: Fn(WorkflowContext, KafkaMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<WorkflowError> + 'static,
{
    fn call(&self, ctx: WorkflowContext, msg: KafkaMessage) -> HandlerFuture {
        let fut = (self.0)(ctx, msg);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }

    fn slot(self: Arc<Self>) -> Box<dyn Slot> {
        Box::new(FnSlot {
            workflow: self,
            run: Box::pin(None),
        })
    }
}

struct FnSlot<F, Fut> {
    workflow: Arc<FnWorkflow<F>>,
    /// The run begun last, until it finishes.
    run: Pin<Box<Option<Fut>>>,
}

impl<F, Fut, E> Slot for FnSlot<F, Fut>
where
    F: Fn(WorkflowContext, KafkaMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<WorkflowError> + 'static,
{
    fn begin(
        &mut self,
        ctx: WorkflowContext,
        msg: KafkaMessage,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WorkflowError>> {
        let run = (self.workflow.0)(ctx, msg);
        self.run.set(Some(run));
        self.resume(cx)
    }

    fn resume(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WorkflowError>> {
        let Some(run) = self.run.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(WorkflowError::from(
                "internal: a finished workflow run was polled again",
            )));
        };
        let result = std::task::ready!(run.poll(cx));
        self.run.set(None);
        Poll::Ready(result.map_err(Into::into))
    }
}

/// A run that did not finish on its first poll, in the slot it began in.
pub(crate) struct SlotRun(pub(crate) Box<dyn Slot>);

impl Future for SlotRun {
    type Output = Result<(), WorkflowError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.resume(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::ConsumerRecord;
    use crate::dispatch::context::ContextEnv;
    use crate::dispatch::message::KeyCell;
    use crate::journal::{Journal, PartitionKey};

    fn noop_cx() -> Context<'static> {
        Context::from_waker(std::task::Waker::noop())
    }

    /// A fresh context and message for the record at `offset` of one partition.
    fn run_of(env: &Arc<ContextEnv>, offset: i64) -> (WorkflowContext, KafkaMessage) {
        let pk = PartitionKey {
            group: "g".into(),
            topic: "t".into(),
            topic_id: uuid::Uuid::from_u128(9),
            partition: 0,
        };
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: 0,
            timestamp: 0,
            timestamp_type: crate::protocol::records::TimestampType::CreateTime,
            key: None,
            value: None,
            headers: Vec::new(),
        };
        let key = KeyCell::from_record(pk.record(offset), record, env);
        let ctx = WorkflowContext::load_in(key.clone(), 1, true, false).unwrap();
        (ctx, KafkaMessage::new(key))
    }

    /// A slot runs one run after another in place; a pending run resumes to its end; a finished
    /// run polled again is an error, not a panic.
    #[tokio::test]
    async fn a_slot_runs_runs_in_turn_and_resumes_a_waiting_one() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
        let workflow: Handler = Arc::new(FnWorkflow(
            move |_ctx: WorkflowContext, msg: KafkaMessage| {
                let rx = rx.clone();
                async move {
                    if msg.offset() == 1 {
                        let rx = rx.lock().unwrap().take().unwrap();
                        rx.await.map_err(|_| WorkflowError::from("dropped"))?;
                    }
                    if msg.offset() == 2 {
                        return Err(WorkflowError::from("offset 2 fails"));
                    }
                    Ok::<(), WorkflowError>(())
                }
            },
        ));
        let dir = tempfile::tempdir().unwrap();
        let env = Arc::new(ContextEnv {
            journal: Journal::open(dir.path()).unwrap(),
            producer: None,
            lane: Arc::default(),
        });
        let (ctx, msg) = run_of(&env, 0);
        let mut slot = workflow.clone().slot();
        let mut cx = noop_cx();
        assert!(matches!(slot.begin(ctx, msg, &mut cx), Poll::Ready(Ok(()))));
        assert!(matches!(slot.resume(&mut cx), Poll::Ready(Err(_))));
        let (ctx, msg) = run_of(&env, 2);
        match slot.begin(ctx, msg, &mut cx) {
            Poll::Ready(Err(e)) => assert!(e.to_string().contains("offset 2 fails"), "{e}"),
            other => panic!("expected the run's error, got {other:?}"),
        }
        let (ctx, msg) = run_of(&env, 1);
        assert!(slot.begin(ctx, msg, &mut cx).is_pending());
        let run = SlotRun(slot);
        tx.send(()).unwrap();
        run.await.unwrap();
    }
}
