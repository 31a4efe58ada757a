import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { idleTimer } from './idle';

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('idleTimer', () => {
  it('fires once after the limit without activity', () => {
    const onIdle = vi.fn();
    idleTimer(5 * 60_000, onIdle);
    vi.advanceTimersByTime(4 * 60_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(60_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10 * 60_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('starts over on activity, and never fires once stopped', () => {
    const onIdle = vi.fn();
    const timer = idleTimer(2 * 60_000, onIdle);
    vi.advanceTimersByTime(90_000);
    timer.touch();
    vi.advanceTimersByTime(90_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
    const other = vi.fn();
    idleTimer(60_000, other).stop();
    vi.advanceTimersByTime(120_000);
    expect(other).not.toHaveBeenCalled();
  });
});
