package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Fragment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ReassemblerTest {
  @Test
  void shouldReassembleFragmentsArrivingInAnyOrderWithDuplicates() {
    long seed = Long.getLong("choir.test.seed", System.nanoTime());
    System.out.println("ReassemblerTest seed=" + seed);
    Random r = new Random(seed);
    byte[] body = new byte[10_000];
    r.nextBytes(body);
    Fragment[] parts = Reassembler.split(7, body, 1000);
    Reassembler re = new Reassembler(4, 1 << 20, 1 << 20);
    List<Fragment> shuffled = new ArrayList<>(List.of(parts));
    shuffled.add(parts[3]);
    Collections.shuffle(shuffled, r);
    byte[] whole = null;
    for (Fragment f : shuffled) {
      byte[] done = re.add(1, 0, f);
      if (done != null) {
        whole = done;
      }
    }
    assertArrayEquals(body, whole);
    assertTrue(re.pending() <= 1, "at most a late duplicate's new partial, which eviction bounds");
  }

  @Test
  void shouldBoundMemoryByDroppingTheOldestPartialMessage() {
    Reassembler re = new Reassembler(2, 1 << 20, 1 << 20);
    for (long op = 1; op <= 3; op++) {
      assertNull(re.add(1, 0, Reassembler.split(op, new byte[3000], 1000)[0]));
    }
    assertEquals(2, re.pending());
    assertEquals(1, re.dropped());
  }

  @Test
  void shouldRefuseInconsistentOrOversizedFragments() {
    Reassembler re = new Reassembler(4, 1 << 20, 5000);
    Fragment ok = Reassembler.split(1, new byte[3000], 1000)[0];
    assertNull(re.add(1, 0, ok.toBuilder().setTotalBytes(6000).build()), "above max message bytes");
    assertNull(re.add(1, 0, ok.toBuilder().setIndex(9).build()), "index beyond count");
    assertNull(re.add(1, 0, ok.toBuilder().setData(ok.getData().substring(1)).build()), "wrong length");
    assertEquals(3, re.dropped());
  }
}
