// Signs the console out after a stretch without user activity.

/** Default idle limit: 30 minutes without a key press, click or touch. */
export const IDLE_LIMIT_MS = 30 * 60 * 1000;

export interface IdleTimer {
  /** Records activity now (restarts the countdown). */
  touch(): void;
  /** Stops the countdown for good. */
  stop(): void;
}

/** Calls `onIdle` once `limitMs` pass without `touch()`. */
export function idleTimer(limitMs: number, onIdle: () => void): IdleTimer {
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const arm = (delay: number) => {
    timer = setTimeout(check, delay);
  };
  // Checks against the clock rather than trusting one long timeout: a sleeping laptop
  // delays timers, and the limit must hold across that.
  function check() {
    if (stopped) return;
    const idle = Date.now() - last;
    if (idle >= limitMs) {
      stopped = true;
      onIdle();
    } else {
      arm(Math.min(limitMs - idle, 60_000));
    }
  }
  arm(Math.min(limitMs, 60_000));
  return {
    touch() {
      last = Date.now();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
