/**
 * A key a {@link WakeupBus} may hand its subscribers instead of a run id or
 * "claimable": wake every waiter, whatever it waits for. The PostgreSQL bus
 * sends it after its LISTEN connection came back, since anything notified
 * while it was gone is lost; waiters re-read the store, so a spurious wake-up
 * costs one read.
 *
 * @see WakeupBus in ./store.ts
 */
export const WAKE_EVERY_WAITER = '*all';
