//! Reads of single entities by id, coalesced under load: while [`IN_FLIGHT`] statements
//! run, the reads that arrive meanwhile wait and go together in the next one, so many
//! concurrent `GET /api/v1/entities/{id}` cost PostgreSQL one round trip, not one each.
//!
//! Nothing waits on purpose: a read that finds a statement slot free is sent at once,
//! alone, so an idle server answers as fast as with a plain query. A read is only ever
//! added to a statement that has not started, so it sees everything committed before it
//! was asked for (a client's own write, then its read, stay in order). When a coalesced
//! statement fails, each of its reads runs again on its own and fails (or not) with its
//! own error, so a lost database is still a 503 and one bad read spoils no others.

use std::collections::HashMap;
use std::sync::OnceLock;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{EntityWithProperties, StoreError, StoreResult, get_entities_in, get_entity};

/// Coalesced statements running at once. Two keep PostgreSQL busy on a small machine while
/// the next batch gathers; more would only make batches smaller.
pub const IN_FLIGHT: usize = 2;

/// Reads one statement carries at most.
pub const MAX_BATCH: usize = 64;

/// Reads waiting for a slot before callers wait to enqueue (backpressure, not loss).
const QUEUE: usize = 4096;

/// A waiting read: the id, and where its entity (or `None`: absent) goes. Dropped
/// unanswered when its statement failed in a way a read of its own may not.
struct Read {
    id: i64,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Option<EntityWithProperties>, PoolFailure>>;

/// A failure of the pool itself, which a read of its own would only meet again (after
/// waiting as long once more): every read of the statement gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolFailure {
    TimedOut,
    Closed,
}

impl PoolFailure {
    fn of(err: &StoreError) -> Option<Self> {
        match err {
            StoreError::Database(sqlx::Error::PoolTimedOut) => Some(PoolFailure::TimedOut),
            StoreError::Database(sqlx::Error::PoolClosed) => Some(PoolFailure::Closed),
            _ => None,
        }
    }

    fn error(self) -> StoreError {
        StoreError::Database(match self {
            PoolFailure::TimedOut => sqlx::Error::PoolTimedOut,
            PoolFailure::Closed => sqlx::Error::PoolClosed,
        })
    }
}

/// The coalescer of one pool; cheap to share. Its task starts with the first read and
/// ends when the last handle is dropped.
pub struct EntityReads {
    pool: PgPool,
    queue: OnceLock<mpsc::Sender<Read>>,
}

impl EntityReads {
    pub fn new(pool: PgPool) -> Self {
        EntityReads {
            pool,
            queue: OnceLock::new(),
        }
    }

    /// The entity `id` with its properties, or `None` when there is none.
    pub async fn get(&self, id: i64) -> StoreResult<Option<EntityWithProperties>> {
        let queue = self.queue.get_or_init(|| {
            let (queue, reads) = mpsc::channel(QUEUE);
            tokio::spawn(dispatch(self.pool.clone(), reads));
            queue
        });
        let (reply, answer) = oneshot::channel();
        if queue.send(Read { id, reply }).await.is_ok()
            && let Ok(answer) = answer.await
        {
            return answer.map_err(PoolFailure::error);
        }
        // The statement failed (or the dispatcher is gone): this read on its own, with
        // its own error.
        get_entity(&self.pool, id).await
    }

    /// Reads waiting for a statement slot (not counting those in running statements).
    pub fn waiting(&self) -> usize {
        self.queue
            .get()
            .map_or(0, |queue| queue.max_capacity() - queue.capacity())
    }

    /// Like [`Self::get`] but an absent entity is a [`StoreError::NotFound`].
    pub async fn require(&self, id: i64) -> StoreResult<EntityWithProperties> {
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("entity {id}")))
    }
}

/// Takes reads while a statement slot is free, as many as are waiting (up to
/// [`MAX_BATCH`]), and runs them as one statement.
async fn dispatch(pool: PgPool, mut reads: mpsc::Receiver<Read>) {
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            read = reads.recv(), if running.len() < IN_FLIGHT => {
                let Some(read) = read else { break };
                let mut batch = vec![read];
                while batch.len() < MAX_BATCH {
                    match reads.try_recv() {
                        Ok(read) => batch.push(read),
                        Err(_) => break,
                    }
                }
                running.push(answer(pool.clone(), batch));
            }
            Some(()) = running.next() => {}
        }
    }
    while running.next().await.is_some() {}
}

/// Runs one statement for `batch` and answers every read; on failure, answers none (each
/// retries alone) unless the pool itself failed.
async fn answer(pool: PgPool, batch: Vec<Read>) {
    let mut replies: HashMap<i64, Vec<Reply>> = HashMap::new();
    for read in batch {
        replies.entry(read.id).or_default().push(read.reply);
    }
    let ids: Vec<i64> = replies.keys().copied().collect();
    let found = match pool.acquire().await {
        Ok(mut conn) => get_entities_in(&mut conn, &ids).await,
        Err(e) => Err(e.into()),
    };
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            if let Some(failure) = PoolFailure::of(&e) {
                replies.into_values().flatten().for_each(|reply| {
                    let _ = reply.send(Err(failure));
                });
            }
            return;
        }
    };
    // A reader that gave up (its request ended) is no loss: sends are not checked.
    for entity in found {
        let Some(mut waiting) = replies.remove(&entity.entity.id) else {
            continue;
        };
        // The last reader of an id takes the entity; any others get a copy.
        let last = waiting.pop();
        for reply in waiting {
            let _ = reply.send(Ok(Some(entity.clone())));
        }
        if let Some(reply) = last {
            let _ = reply.send(Ok(Some(entity)));
        }
    }
    // The ids the statement did not find.
    replies.into_values().flatten().for_each(|reply| {
        let _ = reply.send(Ok(None));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_the_pool_itself_are_shared_by_every_read() {
        let shared = |err: sqlx::Error| PoolFailure::of(&StoreError::Database(err));
        assert_eq!(
            shared(sqlx::Error::PoolTimedOut),
            Some(PoolFailure::TimedOut)
        );
        assert_eq!(shared(sqlx::Error::PoolClosed), Some(PoolFailure::Closed));
        // A dropped connection or a failed statement: each read retries on its own.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(shared(sqlx::Error::Io(io)), None);
        assert_eq!(shared(sqlx::Error::RowNotFound), None);
        assert_eq!(PoolFailure::of(&StoreError::NotFound("x".into())), None);
        for failure in [PoolFailure::TimedOut, PoolFailure::Closed] {
            assert_eq!(PoolFailure::of(&failure.error()), Some(failure));
        }
    }
}
