package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** DropLogTest: a line per reason per interval, with the drops it did not log. */
class DropLogTest {
  @Test
  void shouldLogTheFirstDropThenAtMostOncePerIntervalPerReason() {
    DropLog log = new DropLog(1_000);
    assertEquals(0, log.onDrop("bad_seal", 0));
    assertEquals(-1, log.onDrop("bad_seal", 10));
    assertEquals(-1, log.onDrop("bad_seal", 999));
    assertEquals(0, log.onDrop("replay", 999), "another reason has its own interval");
    assertEquals(2, log.onDrop("bad_seal", 1_000), "two drops went unlogged");
    assertEquals(-1, log.onDrop("bad_seal", 1_500));
  }
}
