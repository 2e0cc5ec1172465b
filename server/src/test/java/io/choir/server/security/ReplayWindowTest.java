package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.BitSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** ReplayWindowTest: RFC 6479-style window per sender, checked against a set of everything accepted. */
class ReplayWindowTest {
  @Test
  void shouldAcceptEachCounterOnceAndRefuseOnesBelowTheWindow() {
    ReplayWindow w = new ReplayWindow();
    assertTrue(w.isFresh(3, 0));
    w.accept(3, 0);
    assertFalse(w.isFresh(3, 0));
    assertTrue(w.isFresh(3, 10));
    w.accept(3, 10);
    assertTrue(w.isFresh(3, 5), "a gap below the highest is still open");
    w.accept(3, 5);
    assertFalse(w.isFresh(3, 5));
    w.accept(3, 10 + ReplayWindow.WINDOW_BITS);
    assertFalse(w.isFresh(3, 10), "now below the window");
    assertEquals(ReplayWindow.Check.BELOW_WINDOW, w.check(3, 9));
    assertEquals(ReplayWindow.Check.SEEN, w.check(3, 10 + ReplayWindow.WINDOW_BITS));
    assertEquals(ReplayWindow.Check.OLD_EPOCH, w.check(2, 10 + ReplayWindow.WINDOW_BITS));
    assertTrue(w.isFresh(3, 11), "just inside the window");
    assertFalse(w.isFresh(2, 1_000_000), "an older epoch");
    assertTrue(w.isFresh(4, 0), "a newer epoch");
    w.accept(4, 0);
    assertEquals(4, w.epoch());
    assertFalse(w.isFresh(3, 20_000));
  }

  @Test
  void shouldMatchAModelOfEveryAcceptedCounter() {
    long seed = System.nanoTime();
    System.out.println("ReplayWindowTest.shouldMatchAModelOfEveryAcceptedCounter seed=" + seed);
    SplittableRandom r = new SplittableRandom(seed);
    ReplayWindow w = new ReplayWindow();
    BitSet accepted = new BitSet();
    long highest = -1;
    for (int i = 0; i < 200_000; i++) {
      long c = Math.max(0, highest + r.nextInt(-ReplayWindow.WINDOW_BITS - 100, 50));
      boolean modelFresh = !accepted.get((int) c) && (highest < 0 || highest - c < ReplayWindow.WINDOW_BITS);
      assertEquals(modelFresh, w.isFresh(1, c), "counter " + c + " highest " + highest + " seed " + seed);
      if (modelFresh) {
        w.accept(1, c);
        accepted.set((int) c);
        highest = Math.max(highest, c);
      }
    }
  }
}
