package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.choir.checker.History;
import io.choir.checker.Operation;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Garbage reads: values no write or CAS on the key could have produced. */
class GarbageReadsTest {
  private final AtomicLong clock = new AtomicLong();
  private final Recorder r = new Recorder(null, () -> clock.addAndGet(1_000));

  private void read(long process, String key, Long value) {
    r.invoke(Operation.read(process, key), "n1");
    r.okRead(process, value);
  }

  @Test
  void shouldAcceptValuesOfWritesAndCasesWhateverTheirOutcome() {
    r.invoke(Operation.write(0, "k", 1), "n1");
    r.ok(0);
    r.invoke(Operation.write(1, "k", 2), "n1");
    r.fail(1, "unavailable"); // the client said no; the checker still does not call 2 garbage
    r.invoke(Operation.cas(2, "k", 1L, 3), "n2");
    r.info(2, "timeout");
    read(3, "k", 1L);
    read(3, "k", 2L);
    read(3, "k", 3L);
    read(3, "k", null); // absent is the initial state
    read(3, "j", null);
    GarbageReads g = GarbageReads.check(r.history());
    assertTrue(g.valid(), g.summary());
    assertEquals(3, g.readsChecked());
    assertTrue(g.toJson().get("valid").booleanValue());
  }

  @Test
  void shouldAcceptAReadOfAWriteStillInFlight() {
    r.invoke(Operation.write(0, "k", 4), "n1");
    read(1, "k", 4L); // the write may take effect before it is acknowledged
    r.ok(0);
    assertTrue(GarbageReads.check(r.history()).valid());
  }

  @Test
  void shouldRejectAValueNeverWritten() {
    r.invoke(Operation.write(0, "k", 1), "n1");
    r.ok(0);
    read(1, "k", 4L);
    read(1, "k", -1L); // the workload's reading of bytes that are not a number
    read(1, "k", 1L);
    GarbageReads g = GarbageReads.check(r.history());
    assertFalse(g.valid());
    assertEquals(List.of(4L, -1L), g.garbage().stream().map(i -> i.op().value()).toList());
    JsonNode json = g.toJson();
    assertFalse(json.get("valid").booleanValue());
    assertEquals(2, json.get("garbageCount").asInt());
    assertEquals("k", json.at("/garbage/0/key").asText());
    assertEquals(4, json.at("/garbage/0/value").asLong());
    assertTrue(json.at("/garbage/0/read").asText().contains("read k -> 4"));
  }

  @Test
  void shouldRejectAValueWrittenOnlyToAnotherKey() {
    r.invoke(Operation.write(0, "j", 2), "n1");
    r.ok(0);
    read(1, "k", 2L);
    assertFalse(GarbageReads.check(r.history()).valid());
  }

  @Test
  void shouldRejectAValueWrittenOnlyAfterTheReadCompleted() {
    read(0, "k", 3L);
    r.invoke(Operation.cas(1, "k", null, 3), "n1");
    r.ok(1);
    GarbageReads g = GarbageReads.check(r.history());
    assertFalse(g.valid());
    assertEquals(1, g.garbage().size());
  }

  @Test
  void shouldFindNoGarbageInTheReportsSyntheticHistory() {
    History h = ReportTest.synthetic(false).history();
    GarbageReads g = GarbageReads.check(h);
    assertTrue(g.valid(), g.summary());
    assertTrue(g.readsChecked() > 100);
  }
}
