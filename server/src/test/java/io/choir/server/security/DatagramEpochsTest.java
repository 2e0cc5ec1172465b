package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.choir.proto.wire.DatagramHeader;
import io.choir.server.storage.MemoryStorage;
import org.junit.jupiter.api.Test;

/** DatagramEpochsTest: every start a higher epoch, persisted, and never below the wall clock. */
class DatagramEpochsTest {
  @Test
  void shouldGrowByOneAtEveryStartAndStartAboveTheClockWhenNoneIsStored() {
    MemoryStorage storage = new MemoryStorage();
    long first = DatagramEpochs.advance(storage, 1_800_000_000L);
    assertEquals(1_800_000_000L, first, "a fresh (or wiped) replica starts at the clock");
    assertEquals(first + 1, DatagramEpochs.advance(storage, 1_800_000_000L), "restarted in the same second");
    assertEquals(first + 2, DatagramEpochs.advance(storage, 5), "a clock gone back does not lower it");
    assertEquals(1_900_000_000L, DatagramEpochs.advance(storage, 1_900_000_000L));
  }

  @Test
  void shouldRefuseToRepeatAnEpochWhenTheyAreUsedUp() {
    assertEquals(1, DatagramEpochs.next(0, 0));
    assertThrows(IllegalStateException.class, () -> DatagramEpochs.next(DatagramHeader.MAX_EPOCH, 0));
  }
}
