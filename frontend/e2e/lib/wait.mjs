// Waiting without sleeping as an assertion: poll a condition until it holds or a generous
// deadline passes, and say what was awaited and what was last seen when it does not.

export async function waitUntil(probe, { timeout = 60_000, interval = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (last) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const seen = lastError ? `last error: ${lastError.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * For negative checks ("nothing leaks"): keeps checking `check` (which throws on a violation)
 * for `period` ms, so something that happens late is still caught. This bounds how long we look;
 * it is not what makes a check pass.
 */
export async function holdsFor(check, { period = 3_000, interval = 250 } = {}) {
  const end = Date.now() + period;
  for (;;) {
    await check();
    if (Date.now() >= end) return;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
