/**
 * A counting gate: at most `capacity` holders inside at once, the rest wait in arrival order.
 * The item intake keeps bulk items and very large images behind gates of their own so that
 * neither can take all of a worker's preprocessing and inference from interactive jobs.
 */
export class AdmissionGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  /** `capacity`: most holders at once (at least 1). */
  constructor(private readonly capacity: number) {}

  enter(): Promise<void> {
    if (this.active < Math.max(1, this.capacity)) {
      this.active += 1;
      return Promise.resolve();
    }
    // The place is handed over directly by leave(): `active` stays counted.
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active -= 1;
  }

  /** Holders inside now. */
  get inside(): number {
    return this.active;
  }
}
