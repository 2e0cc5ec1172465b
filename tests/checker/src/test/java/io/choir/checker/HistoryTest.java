package io.choir.checker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HistoryTest covers history validation and the JSON-lines format. */
class HistoryTest {

  @Test
  void completionWithoutInvocationIsRejected() {
    assertThrows(IllegalArgumentException.class, () -> History.builder().ok(1, 10));
    assertThrows(IllegalArgumentException.class, () -> History.builder().ok(1, 3L, 10));
    assertThrows(IllegalArgumentException.class, () -> History.builder().fail(1, 10));
    assertThrows(IllegalArgumentException.class, () -> History.builder().info(1, 10));
    assertThrows(IllegalArgumentException.class,
        () -> History.builder().add(new Event(EventType.OK, Operation.write(1, "k", 1), 10, null)));
  }

  @Test
  void secondCompletionIsRejected() {
    History.Builder b = History.builder().invokeWrite(1, "k", 1, 1).ok(1, 2);
    assertThrows(IllegalArgumentException.class, () -> b.ok(1, 3));
  }

  @Test
  void secondInvocationWhileOneIsOutstandingIsRejected() {
    History.Builder b = History.builder().invokeWrite(1, "k", 1, 1);
    assertThrows(IllegalArgumentException.class, () -> b.invokeRead(1, "j", 2));
  }

  @Test
  void processReusedAfterInfoIsRejected() {
    History.Builder b = History.builder().invokeWrite(1, "k", 1, 1).info(1, 2);
    assertThrows(IllegalArgumentException.class, () -> b.invokeRead(1, "k", 3));
  }

  @Test
  void timeGoingBackwardsIsRejected() {
    History.Builder b = History.builder().invokeWrite(1, "k", 1, 100);
    assertThrows(IllegalArgumentException.class, () -> b.invokeRead(2, "k", 99));
  }

  @Test
  void okReadWithoutItsValueIsRejected() {
    History.Builder b = History.builder().invokeRead(1, "k", 1);
    assertThrows(IllegalArgumentException.class, () -> b.ok(1, 2));
    b.ok(1, null, 2); // explicit absent is fine
  }

  @Test
  void completionOfAnotherOperationIsRejected() {
    History.Builder b = History.builder().invokeWrite(1, "k", 1, 1);
    assertThrows(IllegalArgumentException.class,
        () -> b.add(new Event(EventType.OK, Operation.write(1, "other", 1), 2, null)));
    assertThrows(IllegalArgumentException.class,
        () -> b.add(new Event(EventType.OK, Operation.write(1, "k", 2), 2, null)));
    b.ok(1, 2); // the invocation is still outstanding after the rejected completions
  }

  @Test
  void malformedOperationsAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> new Operation(1, OpType.WRITE, "k", null, null, null));
    assertThrows(IllegalArgumentException.class, () -> new Operation(1, OpType.CAS, "k", null, 1L, null));
    assertThrows(NullPointerException.class, () -> Operation.read(1, null));
    assertThrows(IllegalArgumentException.class,
        () -> History.builder().invoke(Operation.readResult(1, "k", 3L), 1));
  }

  @Test
  void invocationsArePairedWithTheirCompletions() {
    History h = History.builder()
        .invokeWrite(1, "k", 1, 10)
        .invokeRead(2, "k", 20)
        .ok(1, 30)
        .ok(2, 1L, 40)
        .invokeCas(3, "k", 1L, 2, 50)
        .fail(3, 60)
        .invokeWrite(4, "k", 9, 70)
        .build();
    List<Invocation> inv = h.invocations();
    assertEquals(4, inv.size());
    assertEquals(Outcome.OK, inv.get(0).outcome());
    assertEquals(2, inv.get(0).completeIndex());
    assertEquals(1L, inv.get(1).op().value());
    assertEquals(40, inv.get(1).completeNanos());
    assertEquals(Outcome.FAIL, inv.get(2).outcome());
    assertEquals(Outcome.INFO, inv.get(3).outcome(), "outstanding at the end counts as info");
    assertEquals(-1, inv.get(3).completeIndex());
    assertFalse(inv.get(3).overlaps(inv.get(0)));
    assertTrue(inv.get(0).overlaps(inv.get(1)));
  }

  @Test
  void jsonLinesRoundTripKeepsEveryEvent() {
    History h = History.builder()
        .invoke(Operation.write(1, "k1", 3), 100, "n1")
        .invokeRead(2, "k1", 110)
        .ok(1, 120)
        .ok(2, null, 130)
        .invokeCas(3, "k1", null, 4, 140)
        .info(3, 150)
        .invokeCas(4, "k2", 3L, 5, 160)
        .fail(4, 170)
        .add(new Event(EventType.INVOKE, Operation.read(5, "k2"), 180, null))
        .add(new Event(EventType.OK, Operation.readResult(5, "k2", -7L), 190, "n2"))
        .invokeWrite(6, "k3", Long.MAX_VALUE, 200)
        .build();
    String text = h.toJsonLines();
    assertEquals(h.size(), text.split("\n").length);
    History back = History.fromJsonLines(text);
    assertEquals(h.events(), back.events());
    assertEquals(h.invocations(), back.invocations());
    assertEquals(text, back.toJsonLines());
  }

  @Test
  void jsonLinesUseTheDocumentedFieldNames() throws IOException {
    History h = History.builder().invoke(Operation.cas(7, "k1", 2L, 3), 1200, "n3").ok(7, 1300).build();
    String first = h.toJsonLines().split("\n")[0];
    JsonNode n = new ObjectMapper().readTree(first);
    assertEquals(7, n.get("process").asLong());
    assertEquals("invoke", n.get("type").asText());
    assertEquals("cas", n.get("f").asText());
    assertEquals("k1", n.get("key").asText());
    assertEquals(2, n.get("expected").asLong());
    assertEquals(3, n.get("new").asLong());
    assertEquals(1200, n.get("time").asLong());
    assertEquals("n3", n.get("node").asText());
  }

  @Test
  void jsonLinesCompletionsMayOmitTheOperation() throws IOException {
    String text = String.join("\n",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":3,\"time\":1}",
        "",
        "{\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"time\":2}",
        "{\"process\":1,\"type\":\"ok\",\"time\":3,\"extra\":\"ignored\"}",
        "{\"process\":2,\"type\":\"ok\",\"value\":3,\"time\":4}",
        "{\"process\":3,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"time\":5}",
        "{\"process\":3,\"type\":\"ok\",\"time\":6}");
    History h = History.readJsonLines(new StringReader(text));
    assertEquals(6, h.size());
    assertEquals(3L, h.invocations().get(1).op().value());
    assertNull(h.invocations().get(2).op().value(), "a read without value read absent");
    assertEquals(Verdict.INVALID, Checker.check(h, Duration.ofSeconds(5)).verdict());
  }

  @Test
  void jsonLinesErrorsNameTheLine() {
    String text = "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":3,\"time\":1}\n"
        + "{\"process\":2,\"type\":\"ok\",\"time\":3}\n";
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> History.fromJsonLines(text));
    assertTrue(e.getMessage().startsWith("line 2:"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> History.fromJsonLines("{\"process\":1,\"type\":\"invoke\",\"f\":\"swap\",\"key\":\"k\",\"time\":1}"));
    assertThrows(IllegalArgumentException.class,
        () -> History.fromJsonLines("{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":1.5,\"time\":1}"));
    assertThrows(IOException.class, () -> History.readJsonLines(new StringReader("{not json")));
  }

  @Test
  void jsonLinesFileRoundTrip(@TempDir Path dir) throws IOException {
    History h = Hist.of().writeOk(1, "k", 1).read(2, "k").info(2).build();
    Path f = dir.resolve("history.jsonl");
    h.writeJsonLines(f);
    assertEquals(h.events(), History.readJsonLines(f).events());
  }
}
