package io.choir.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Backoff, endpoint parsing, the builder's validation and value types: no sockets. */
class PureLogicTest {
  @Test
  void shouldGrowBackoffExponentiallyWithinJitterBoundsAndCap() {
    long seed = 7;
    Random random = new Random(seed);
    for (int retry = 1; retry <= 12; retry++) {
      long cap = Math.min(Backoff.MAX_DELAY_MS, Backoff.MIN_DELAY_MS << (retry - 1));
      for (int i = 0; i < 50; i++) {
        long d = Backoff.delayMs(retry, random);
        assertTrue(d >= cap / 2 && d <= cap, "seed " + seed + " retry " + retry + " delay " + d + " cap " + cap);
      }
    }
    assertEquals(Backoff.MAX_DELAY_MS, Math.min(Backoff.MAX_DELAY_MS, Backoff.MIN_DELAY_MS << 20));
  }

  @Test
  void shouldReplayTheSameBackoffFromTheSameSeed() {
    List<Long> a = new ArrayList<>();
    List<Long> b = new ArrayList<>();
    Random ra = new Random(99);
    Random rb = new Random(99);
    for (int retry = 1; retry <= 10; retry++) {
      a.add(Backoff.delayMs(retry, ra));
      b.add(Backoff.delayMs(retry, rb));
    }
    assertEquals(a, b);
    assertNotEquals(a.get(9), a.get(0));
  }

  @Test
  void shouldParseEndpointsStrictly() {
    assertEquals(new Endpoint("localhost", 7000), Endpoint.parse("localhost:7000"));
    assertEquals(new Endpoint("::1", 7000), Endpoint.parse("[::1]:7000"));
    assertEquals("[::1]:7000", Endpoint.parse("[::1]:7000").toString());
    assertEquals("10.0.0.1:1", Endpoint.parse(" 10.0.0.1:1 ").toString());
    for (String bad : new String[] {"", "host", "host:", ":7000", "host:x", "host:0", "host:65536", "::1:7000"}) {
      assertThrows(IllegalArgumentException.class, () -> Endpoint.parse(bad), bad);
    }
  }

  @Test
  void shouldValidateBuilderSettings() {
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().build());
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().endpoints(List.of()));
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().endpoints("nohost"));
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().maxInFlight(0));
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().maxFrameBytes(10));
    assertThrows(IllegalArgumentException.class, () -> ChoirClient.builder().eventLoopThreads(0));
    assertThrows(IllegalArgumentException.class,
        () -> ChoirClient.builder().requestTimeout(Duration.ZERO));
  }

  @Test
  void shouldGiveEachClientARandomNonZeroId() {
    try (ChoirClient a = ChoirClient.builder().endpoints("127.0.0.1:1").build();
        ChoirClient b = ChoirClient.builder().endpoints("127.0.0.1:1").build()) {
      assertNotEquals(0, a.clientId());
      assertNotEquals(a.clientId(), b.clientId());
      assertTrue(a.clientId() < 0 && b.clientId() < 0, "the top bit is set: never a session id (an op)");
      assertEquals(0, a.sessionId(), "no session before the first write");
    }
  }

  @Test
  void shouldCompareValueTypesByContent() {
    assertEquals(new VersionedValue(new byte[] {1}, 3), new VersionedValue(new byte[] {1}, 3));
    assertNotEquals(new VersionedValue(new byte[] {1}, 3), new VersionedValue(new byte[] {2}, 3));
    assertEquals(new VersionedValue(new byte[] {1}, 3).hashCode(), new VersionedValue(new byte[] {1}, 3).hashCode());
    assertEquals(new KeyValueVersion(new byte[] {1}, new byte[] {2}, 3),
        new KeyValueVersion(new byte[] {1}, new byte[] {2}, 3));
  }
}
