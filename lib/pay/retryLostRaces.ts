import { WriteConflict } from '../store/payStore';

export interface RetryLostRacesOptions {
  /** Tries in all, the first included. */
  rounds: number;
  /** The n-th retry waits a random time up to `baseDelayMs * 2^(n-1)`. */
  baseDelayMs: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const LOST_RACE_RETRIES: RetryLostRacesOptions = { rounds: 3, baseDelayMs: 25 };

/**
 * A pay races the user's other requests on the points account (other orders, repeat taps): on DynamoDB
 * they cancel each other (`TransactionConflict`). Eight tries waiting up to 20, 40, … 1,280 ms (at most
 * 2.5 s in all, well inside the pay's time budget) carried 7 or 8 of 8 overlapping pays through where
 * three tries carried 3 (test/lib/pay/overlappingPays.test.ts); the rest are refused ORDER_BUSY.
 */
export const PAY_RACE_RETRIES: RetryLostRacesOptions = { rounds: 8, baseDelayMs: 20 };

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` again when its conditional write lost a race (`WriteConflict`): it re-reads and decides
 * again. Between rounds it waits a random time that doubles each round ("full jitter"): on DynamoDB,
 * transactions overlapping on one item are cancelled together, and retrying at once makes them
 * collide again. The last loss is rethrown.
 *
 * @example await retryLostRaces(() => completeOnce(deps, payment))
 */
export async function retryLostRaces<T>(work: () => Promise<T>, options: RetryLostRacesOptions = LOST_RACE_RETRIES): Promise<T> {
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? pause;
  for (let round = 1; ; round++) {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof WriteConflict) || round >= options.rounds) throw error;
      await sleep(random() * options.baseDelayMs * 2 ** (round - 1));
    }
  }
}
