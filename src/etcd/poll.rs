//! Every bounded wait of the etcd code: ask again and again until an answer or a deadline.

use std::time::Duration;

use tokio::time::Instant;

/// Run `check` until it returns `Ok`, every `every`, for at most `budget` (it always runs at
/// least once). Returns the `Ok`, or the last `Err` once the budget is spent.
pub async fn poll_until<T, E>(
    budget: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + budget;
    loop {
        let r = check().await;
        let now = Instant::now();
        if r.is_ok() || now >= deadline {
            return r;
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answers_early_or_gives_the_last_error_at_the_deadline() {
        let mut n = 0;
        let r: Result<u32, u32> = poll_until(
            Duration::from_secs(10),
            Duration::from_secs(1),
            async || {
                n += 1;
                if n == 3 { Ok(n) } else { Err(n) }
            },
        )
        .await;
        assert_eq!(r, Ok(3));

        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let r: Result<(), u32> =
            poll_until(Duration::from_secs(5), Duration::from_secs(2), async || {
                tries += 1;
                Err(tries)
            })
            .await;
        // At 0, 2, 4 and then at the deadline (5 s).
        assert_eq!(r, Err(4));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
