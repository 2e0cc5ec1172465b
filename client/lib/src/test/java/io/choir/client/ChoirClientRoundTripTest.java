package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Request;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Round trips of every operation through a fake replica that answers from an in-memory map. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ChoirClientRoundTripTest {
  private FakeServer server;
  private ChoirClient client;

  @BeforeEach
  void setUp() throws Exception {
    server = FakeServer.start();
    client = ChoirClient.builder().endpoints(server.address()).requestTimeout(Duration.ofSeconds(3))
        .eventLoopThreads(1).random(new Random(42)).build();
  }

  @AfterEach
  void tearDown() {
    client.close();
    server.close();
  }

  @Test
  void shouldPutGetAndDeleteWithVersions() {
    long v1 = client.put("k", "v1");
    Optional<VersionedValue> got = client.get("k");
    assertTrue(got.isPresent());
    assertEquals("v1", got.get().valueAsString());
    assertEquals(v1, got.get().version());

    long v2 = client.put("k".getBytes(), new byte[] {1, 2, 3});
    assertTrue(v2 > v1);
    assertArrayEquals(new byte[] {1, 2, 3}, client.get("k".getBytes()).orElseThrow().value());

    assertTrue(client.delete("k"));
    assertFalse(client.delete("k"));
    assertEquals(Optional.empty(), client.get("k"));
  }

  @Test
  void shouldSendClientIdAndIncreasingRequestIds() {
    client.put("a", "1");
    client.get("a");
    List<Request> seen = server.received();
    assertEquals(2, seen.size());
    assertEquals(client.sessionId(), seen.get(0).getClientId(), "a write carries its session's id");
    assertEquals(client.clientId(), seen.get(1).getClientId(), "a read carries the instance id");
    assertEquals(client.clientId(), server.sessionRequests().get(0).getClientId());
    assertTrue(client.clientId() != 0);
    assertTrue(client.sessionId() != 0);
    assertEquals(1, seen.get(0).getRequestId());
    // Id 2 went to the RegisterSession the first write needed (same id sequence, so first_incomplete
    // stays right); the read needs no session.
    assertEquals(2, server.sessionRequests().get(0).getRequestId());
    assertEquals(3, seen.get(1).getRequestId());
  }

  @Test
  void shouldCompareAndSetOnValueAndReportCurrentStateOnFailure() {
    long v1 = client.put("k", "old");
    long v2 = client.compareAndSet("k", "old", "new");
    assertTrue(v2 > v1);
    CasFailedException e = assertThrows(CasFailedException.class, () -> client.compareAndSet("k", "old", "x"));
    assertEquals("new", e.currentValueAsString());
    assertEquals(v2, e.currentVersion());
    assertEquals(-1, e.failedIndex());
    assertEquals("new", client.get("k").orElseThrow().valueAsString());
  }

  @Test
  void shouldCompareAndSetOnVersion() {
    long v1 = client.put("k", "a");
    long v2 = client.compareAndSetVersion("k", v1, "b");
    CasFailedException e = assertThrows(CasFailedException.class, () -> client.compareAndSetVersion("k", v1, "c"));
    assertEquals(v2, e.currentVersion());
    assertEquals("b", client.get("k").orElseThrow().valueAsString());
  }

  @Test
  void shouldPutIfAbsentOnlyOnce() {
    long v = client.putIfAbsent("k", "first");
    CasFailedException e = assertThrows(CasFailedException.class, () -> client.putIfAbsent("k", "second"));
    assertTrue(e.keyExists());
    assertEquals("first", e.currentValueAsString());
    assertEquals(v, e.currentVersion());
  }

  @Test
  void shouldReportAbsentKeyWhenCasExpectsAValue() {
    CasFailedException e = assertThrows(CasFailedException.class, () -> client.compareAndSet("nope", "x", "y"));
    assertFalse(e.keyExists());
    assertNull(e.currentValue());
    assertEquals(0, e.currentVersion());
  }

  @Test
  void shouldScanRangesWithLimitAndMore() {
    for (String k : List.of("a", "b", "c", "d")) {
      client.put(k, k.toUpperCase());
    }
    ScanResult page = client.scan("b", "d", 10);
    assertEquals(List.of("b", "c"), page.entries().stream().map(KeyValueVersion::keyAsString).toList());
    assertEquals("B", page.entries().get(0).valueAsString());
    assertFalse(page.more());

    ScanResult limited = client.scan("a", "", 3);
    assertEquals(3, limited.entries().size());
    assertTrue(limited.more());

    ScanResult toEnd = client.scan(new byte[0], null, 0);
    assertEquals(4, toEnd.entries().size());
  }

  @Test
  void shouldApplyBatchAtomicallyAndReportFailedIndex() {
    client.put("x", "1");
    long v = client.batch(Batch.builder().put("a", "A").delete("x").putIfAbsent("b", "B").build());
    assertEquals(v, client.get("a").orElseThrow().version());
    assertEquals(v, client.get("b").orElseThrow().version());
    assertEquals(Optional.empty(), client.get("x"));

    CasFailedException e = assertThrows(CasFailedException.class, () -> client.batch(
        Batch.builder().put("c", "C").compareAndSet("a", "wrong", "Z").build()));
    assertEquals(1, e.failedIndex());
    assertEquals("A", e.currentValueAsString());
    assertEquals(Optional.empty(), client.get("c"), "a failed batch writes nothing");
  }

  @Test
  void shouldCompleteAsyncCallsWithTypedExceptionsUnwrapped() throws Exception {
    client.put("k", "v");
    Throwable failure = client.async().putIfAbsent("k", "w")
        .handle((v, e) -> e).get(5, TimeUnit.SECONDS);
    assertTrue(failure instanceof CasFailedException, "got " + failure);
    assertEquals(Optional.empty(), client.async().get("absent").get(5, TimeUnit.SECONDS));
  }

  @Test
  void shouldRejectNullAndEmptyKeysBeforeSending() {
    assertThrows(IllegalArgumentException.class, () -> client.put("", "v"));
    assertThrows(IllegalArgumentException.class, () -> client.get((String) null));
    assertThrows(IllegalArgumentException.class, () -> client.get(new byte[0]));
    assertThrows(IllegalArgumentException.class, () -> client.put("k", (String) null));
    assertThrows(IllegalArgumentException.class, () -> client.async().delete(new byte[0]));
    assertThrows(IllegalArgumentException.class, () -> client.scan("a", "b", -1));
    assertThrows(IllegalArgumentException.class, () -> Batch.builder().build());
    assertTrue(server.received().isEmpty());
  }

  @Test
  void shouldRefuseOversizedRequestsWithoutSendingThem() {
    try (ChoirClient small = ChoirClient.builder().endpoints(server.address()).maxFrameBytes(1024).build()) {
      TooLargeException e = assertThrows(TooLargeException.class, () -> small.put("k".getBytes(), new byte[2000]));
      assertTrue(e.getMessage().contains("maxFrameBytes"), e.getMessage());
      small.put("k", "small");
      assertEquals(1, server.received().size(), "only the small put reached the server");
    }
  }

  @Test
  void shouldFailCallsAfterCloseWithUnavailable() {
    client.close();
    UnavailableException e = assertThrows(UnavailableException.class, () -> client.put("k", "v"));
    assertEquals("client closed", e.getMessage());
  }
}
