package io.choir.checker;

import java.time.Duration;

/**
 * Hist is a terse way to write histories in tests: every call is the next event, one time unit (1000 ns)
 * after the previous one, so the order of the calls is the real-time order.
 */
final class Hist {
  private final History.Builder b = History.builder();
  private long t;

  static Hist of() {
    return new Hist();
  }

  private long tick() {
    t += 1000;
    return t;
  }

  Hist write(long p, String key, long v) {
    b.invokeWrite(p, key, v, tick());
    return this;
  }

  Hist read(long p, String key) {
    b.invokeRead(p, key, tick());
    return this;
  }

  Hist cas(long p, String key, Long expected, long v) {
    b.invokeCas(p, key, expected, v, tick());
    return this;
  }

  Hist ok(long p) {
    b.ok(p, tick());
    return this;
  }

  /** ok completes a read with {@code v} ({@code null} = absent). */
  Hist ok(long p, Long v) {
    b.ok(p, v, tick());
    return this;
  }

  Hist fail(long p) {
    b.fail(p, tick());
    return this;
  }

  Hist info(long p) {
    b.info(p, tick());
    return this;
  }

  /** writeOk is a write that completes before anything else happens. */
  Hist writeOk(long p, String key, long v) {
    return write(p, key, v).ok(p);
  }

  /** readOk is a read that completes before anything else happens. */
  Hist readOk(long p, String key, Long v) {
    return read(p, key).ok(p, v);
  }

  History build() {
    return b.build();
  }

  CheckResult check() {
    return Checker.check(build(), Duration.ofSeconds(10));
  }
}
