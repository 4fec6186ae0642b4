/**
 * The time a driver signs its URLs at. Each driver has its own, so a test can sign URLs in the past
 * (expired ones, without sleeping) while the store that checks them keeps the real time.
 */
export interface Clock {
  now(): Date;
}

export function systemClock(): Clock {
  return { now: () => new Date() };
}
