// @ts-check
// What a page gets: the element it fills, the session (hub client and key), and its lifetime.

/** @typedef {import('./session.js').Session} Session */

/** A page's lifetime: it ends when the console routes elsewhere; timers and late answers check it. */
export class PageLife {
  alive = true;
  /** @type {(() => void)[]} */
  #stops = [];

  /** @param {() => void} fn run when the page ends */
  onStop(fn) {
    this.#stops.push(fn);
  }

  stop() {
    this.alive = false;
    for (const fn of this.#stops.splice(0)) fn();
  }
}

/**
 * @typedef {object} PageContext
 * @property {HTMLElement} app the element the page fills
 * @property {Session} session
 * @property {PageLife} life
 */
