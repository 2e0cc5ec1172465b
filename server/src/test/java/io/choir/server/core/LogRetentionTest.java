package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** LogRetention: how much of the log's old end is kept, and when truncation is asked for. */
class LogRetentionTest {
  @Test
  void shouldKeepMinOpsBehindCommitAndTruncateInStepsOfATenth() {
    LogRetention retention = new LogRetention(1, 100, 10_000);
    assertEquals(OptionalLong.empty(), retention.truncate(1000, 105, 105), "a step is 10 ops");
    assertEquals(OptionalLong.of(11), retention.truncate(1000, 110, 110));
    assertEquals(11, retention.firstOp());
    assertEquals(OptionalLong.empty(), retention.truncate(1000, 115, 115));
  }

  @Test
  void shouldKeepWhatAReplicaLacksUpToTheMaximum() {
    LogRetention retention = new LogRetention(1, 10, 100);
    assertEquals(OptionalLong.of(6), retention.truncate(5, 50, 50), "the low watermark holds it");
    assertEquals(OptionalLong.of(201), retention.truncate(5, 300, 300), "but not beyond max ops behind commit");
  }

  @Test
  void shouldNeverTruncateAnUnappliedEntry() {
    LogRetention retention = new LogRetention(1, 10, 100);
    assertEquals(OptionalLong.of(51), retention.truncate(1000, 1000, 50));
  }
}
