import { Injectable } from '@nestjs/common';

/** Work another feature gives the janitor's pass (the exports' expiry), run before the deletion outbox. */
export type JanitorTask = (now: Date) => Promise<void>;

/**
 * Where features that depend on the clips register their share of the janitor's pass, so the janitor
 * runs it without depending on them.
 */
@Injectable()
export class JanitorTasks {
  private readonly tasks: { name: string; run: JanitorTask }[] = [];

  add(name: string, run: JanitorTask): void {
    this.tasks.push({ name, run });
  }

  get all(): readonly { name: string; run: JanitorTask }[] {
    return this.tasks;
  }
}
