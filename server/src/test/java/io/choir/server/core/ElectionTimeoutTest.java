package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** ElectionTimeout's contract (VR Revisited 4.2 step 1): timeouts in [T, 2T), drawn from the shared source in order. */
class ElectionTimeoutTest {
  @Test
  void shouldDrawTimeoutsBetweenTAndTwiceT() {
    long t = 500_000_000L;
    ElectionTimeout timeouts = new ElectionTimeout(t, new SplittableRandom(7));
    for (int i = 0; i < 1000; i++) {
      long drawn = timeouts.draw();
      assertTrue(drawn >= t && drawn < 2 * t, "drawn " + drawn);
    }
  }

  @Test
  void shouldDrawFromTheSharedSourceSoOtherPartsSeeTheSameSequenceAsBefore() {
    SplittableRandom shared = new SplittableRandom(42);
    SplittableRandom replay = new SplittableRandom(42);
    ElectionTimeout timeouts = new ElectionTimeout(100, shared);
    assertEquals(100 + replay.nextLong(100), timeouts.draw());
    assertEquals(replay.nextLong(), shared.nextLong()); // one draw each, in order: seeds replay
  }
}
